"""The training job: strategies (staged, end to end) built from config, the LightningModule,
DataModules, calibration, evaluation and the modality ablation (``training.ablation``).

``train`` is the `genre-tagger train` command as a function.
"""

from genre_tagger.training.train import train

__all__ = ["train"]
