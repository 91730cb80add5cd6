"""`genre-tagger ablate`: every modality subset trained on shared cached embeddings, and the
full model scored with modalities removed (``runner``); its tables and chart (``report``)."""

from genre_tagger.training.ablation.report import AT_INFERENCE, SETTINGS_ORDER, TRAINED
from genre_tagger.training.ablation.runner import modality_subsets, run_ablation

__all__ = ["AT_INFERENCE", "SETTINGS_ORDER", "TRAINED", "modality_subsets", "run_ablation"]
