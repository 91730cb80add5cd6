"""The simple-features reference every quality benchmark reports beside the model.

Hand-made features per modality (``features``: log-mel band statistics and an onset
autocorrelation for audio; colour statistics, a hue histogram and a gradient-orientation
histogram for the cover; tf-idf for the texts), one-vs-rest logistic regression with C
chosen on val (``reference``), and the model-vs-reference table that says plainly where
the model does not win (``compare``).
"""

from genre_tagger.baselines.compare import comparison_table, model_rows_from_ablation
from genre_tagger.baselines.reference import ReferenceResult, run_reference

__all__ = ["ReferenceResult", "comparison_table", "model_rows_from_ablation", "run_reference"]
