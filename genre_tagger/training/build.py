"""The edge: a merged config (dict) becomes the objects a training run uses, once.

Everything below this module takes built objects; only ``build_parts`` and
``build_strategy`` read the config's sections.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genre_tagger.config import instantiate
from genre_tagger.errors import UserInputError
from genre_tagger.training.embedding import EmbeddingSettings
from genre_tagger.training.strategies import EndToEndTraining, PretrainSettings, StagedTraining, TrainingParts
from genre_tagger.runs.trainers import TrainerFactory

LEGACY_MODES = {"staged": StagedTraining, "end_to_end": EndToEndTraining}


def upgrade_config(config: dict) -> dict:
    """A config saved before training parts were class_paths (in checkpoints of version 0.1.0
    made before the training package), brought to today's shape: ``optim`` becomes the
    ``optimizer``'s init_args, ``training: {mode: ...}`` its strategy's class_path."""
    config = copy.deepcopy(config)
    legacy_optim = config.pop("optim", None)
    if legacy_optim is not None and "optimizer" not in config:
        config["optimizer"] = {"class_path": "torch.optim.AdamW", "init_args": dict(legacy_optim)}
        config.setdefault("scheduler", {"class_path": "genre_tagger.training.optim.cosine_schedule",
                                        "init_args": {"final_lr_fraction": 0.05}})
    training = config.get("training")
    if isinstance(training, dict) and "mode" in training:  # an old overlay on today's default: mode wins
        strategy = LEGACY_MODES.get(training["mode"])
        if strategy is None:
            raise UserInputError(f"training.mode must be 'staged' or 'end_to_end', got {training['mode']!r}")
        config["training"] = {"class_path": f"{strategy.__module__}.{strategy.__qualname__}"}
    return config


def build_strategy(config: dict) -> Any:
    """The training strategy object named by ``training.class_path``."""
    return instantiate(upgrade_config(config)["training"])


def strategy_name(strategy: Any) -> str:
    return getattr(strategy, "name", type(strategy).__name__)


def build_parts(config: dict, train_targets: np.ndarray, cache_dir: Path | None, progress: bool,
                loggers: list | None = None) -> TrainingParts:
    """Loss (weighted by the training split's label frequencies ``train_targets [N, L]``),
    optimizer and scheduler factories, trainers, embedding settings and stage-1 settings."""
    config = upgrade_config(config)
    loss = instantiate(config["loss"])
    if hasattr(loss, "set_label_frequencies"):
        loss.set_label_frequencies(torch.from_numpy(train_targets.mean(axis=0)))
    trainers = TrainerFactory.from_config(config["trainer"], progress)
    data = config["data"]
    embedding = EmbeddingSettings(cache_dir, data["batch_size"], data["num_workers"], trainers, progress)
    scheduler = config.get("scheduler")
    return TrainingParts(
        loss=loss, optimizer=instantiate(config["optimizer"], partial=True),
        scheduler=instantiate(scheduler, partial=True) if scheduler else None, trainers=trainers,
        embedding=embedding,
        pretraining=PretrainSettings(**config.get("encoder_pretraining", {})), loggers=list(loggers or []),
    )

