"""The edge: a merged config (dict) becomes the objects a training run uses, once.

Everything below this module takes built objects; only ``build_parts`` and
``build_strategy`` read the config's sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from genre_tagger.config import instantiate
from genre_tagger.cpus import worker_count
from genre_tagger.runs.trainers import TrainerFactory
from genre_tagger.training.embedding import EmbeddingSettings
from genre_tagger.training.presence_calibration import PresenceCalibrationSettings
from genre_tagger.training.strategies import PretrainSettings, TrainingParts
from genre_tagger.training.subset_heads import SubsetHeadSettings
from genre_tagger.upgrade import upgrade_config


def build_strategy(config: dict) -> Any:
    """The training strategy object named by ``training.class_path``."""
    return instantiate(upgrade_config(config)["training"])


def strategy_name(strategy: Any) -> str:
    return getattr(strategy, "name", type(strategy).__name__)


def build_parts(config: dict, train_targets: np.ndarray, cache_dir: Path | None, progress: bool,
                loggers: list | None = None) -> TrainingParts:
    """Loss (weighted by the training split's label frequencies ``train_targets [N, L]``),
    optimizer and scheduler factories, trainers, embedding settings, stage-1 settings and the
    per-subset heads' and the presence calibration's settings (the optional ``subset_heads``
    and ``presence_calibration`` sections)."""
    config = upgrade_config(config)
    loss = instantiate(config["loss"])
    if hasattr(loss, "set_label_frequencies"):
        loss.set_label_frequencies(torch.from_numpy(train_targets.mean(axis=0)))
    trainers = TrainerFactory.from_config(config["trainer"], progress)
    data = config["data"]
    embedding = EmbeddingSettings(cache_dir, data["batch_size"], worker_count(data["num_workers"]), trainers, progress)
    scheduler = config.get("scheduler")
    return TrainingParts(
        loss=loss, optimizer=instantiate(config["optimizer"], partial=True),
        scheduler=instantiate(scheduler, partial=True) if scheduler else None, trainers=trainers,
        embedding=embedding,
        pretraining=PretrainSettings(**config["encoder_pretraining"]), loggers=list(loggers or []),
        subset_heads=SubsetHeadSettings(**(config.get("subset_heads") or {})),
        presence_calibration=PresenceCalibrationSettings(**(config.get("presence_calibration") or {})),
    )

