"""The training job: strategies (staged, end to end) built from config, the LightningModule,
DataModules, calibration, evaluation and the modality ablation (``training.ablation``).

``train`` is the `genre-tagger train` command as a function.
"""

from genre_tagger.lazy import lazy_exports

# Lazy: the CLI's parser imports ``training.commands``, and Lightning has no business there.
__all__ = ["train"]
__getattr__ = lazy_exports(__name__, {"train": "run"})
