"""The training job: strategies (staged, end to end) built from config, the LightningModule,
DataModules, calibration, evaluation and the modality ablation (``training.ablation``).

``train`` is the `genre-tagger train` command as a function.
"""

__all__ = ["train"]


def __getattr__(name: str):
    # Lazy, so that importing the package (the CLI's parser imports ``training.commands``)
    # does not import Lightning. Bound here as the function, not the submodule of that name.
    if name == "train":
        from genre_tagger.training.train import train

        globals()["train"] = train
        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
