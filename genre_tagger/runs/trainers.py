"""Lightning Trainers for every job's training stages, and ``fit``.

A config's ``trainer`` section holds Lightning's own Trainer arguments (accelerator,
devices, strategy, num_nodes, precision, ... any of them), plus ``patience`` (early
stopping on the factory's monitored metric) and ``callbacks`` (class_path specs added to
every stage). Every Trainer keeps the best epoch's weights (``BestWeights``) and keeps
Lightning's banners out of the user's terminal (``quiet_lightning``).
"""

from __future__ import annotations

import copy
import logging
import math
import signal
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch

from genre_tagger.config import instantiate

MONITOR = "val_macro_roc_auc"
BEST = "best_monitored"
BEST_EPOCH = "best_epoch"
EPOCHS = "epochs_trained"


QUIET_WARNINGS = (".*in eval mode at the start of training.*", ".*LeafSpec.*", ".*does not have many workers.*",
                  ".*litlogger.*", ".*couldn't infer the batch indices.*", ".*deprecated.*", ".*is not recommended.*",
                  ".*sync_dist=True.*", ".*barebones.*",
                  ".*logs directory .* exists and is not empty.*")  # ddp_spawn: handled in tracking.py


def quiet_lightning(level: int = logging.WARNING) -> None:
    """Keep Lightning's banners, tips and known-harmless warnings out of a user's terminal.

    Called in the launching process and again on every rank: ranks that ``ddp_spawn``
    starts do not inherit the launcher's filters. Tagging asks for ``logging.ERROR``.
    """
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(level)
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


quiet_lightning()  # also in DDP worker processes, which import this module to unpickle the trainer


class BestWeights(pl.Callback):
    """Keeps the best epoch's weights in memory (no large checkpoint files per epoch) and puts
    them back when the fit ends, on every rank: under ``ddp_spawn`` the weights the main
    process receives are then the best ones. The best value and the epoch count are left in
    ``trainer.callback_metrics`` (which ``ddp_spawn`` hands back to the main process)."""

    def __init__(self, monitor: str = MONITOR):
        self.monitor = monitor
        self.best = -math.inf
        self.best_epoch = 0
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) > self.best and not trainer.sanity_checking:
            self.best, self.best_epoch = float(value), trainer.current_epoch
            self.state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}

    def on_fit_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.state is not None:
            module.model.load_state_dict(self.state)
        trainer.callback_metrics[BEST] = torch.tensor(self.best)
        trainer.callback_metrics[BEST_EPOCH] = torch.tensor(self.best_epoch)
        trainer.callback_metrics[EPOCHS] = torch.tensor(trainer.current_epoch)


@dataclass
class TrainerFactory:
    """Builds a fresh ``pl.Trainer`` per stage (callbacks hold per-fit state), early-stopped
    on ``monitor`` (higher is better) with the best epoch's weights put back."""

    settings: dict[str, Any]  # pl.Trainer keyword arguments
    patience: int  # each job's config says (no default here: the YAML is the only one)
    callbacks: list[dict] = field(default_factory=list)  # class_path specs
    progress: bool = True
    monitor: str = MONITOR

    @classmethod
    def from_config(cls, section: dict[str, Any], progress: bool, monitor: str = MONITOR) -> "TrainerFactory":
        settings = copy.deepcopy(section)
        patience = settings.pop("patience")
        callbacks = settings.pop("callbacks", None) or []
        return cls(settings, patience, callbacks, progress, monitor)

    def __call__(self, max_epochs: int | None = None, patience: int | None = None, loggers: list | None = None,
                 monitor: bool = True) -> pl.Trainer:
        quiet_lightning()
        settings = dict(self.settings)
        if max_epochs is not None:
            settings["max_epochs"] = max_epochs
        callbacks = [instantiate(spec) for spec in self.callbacks]
        if monitor:
            callbacks += [pl.callbacks.EarlyStopping(self.monitor, mode="max", patience=patience or self.patience),
                          BestWeights(self.monitor)]
        if self.progress:  # epoch bars on stderr: stdout carries results
            callbacks.append(pl.callbacks.RichProgressBar(console_kwargs={"stderr": True}))
        options = dict(logger=loggers or False, enable_checkpointing=False, enable_progress_bar=self.progress,
                       enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1)
        return pl.Trainer(callbacks=callbacks, **{**options, **settings})

    def world_size(self) -> int:
        """How many processes a stage runs in (1 unless DDP over several devices or nodes)."""
        return self(monitor=False).world_size


def fit(module: pl.LightningModule, trainer: pl.Trainer, datamodule: pl.LightningDataModule | None = None,
        **dataloaders: Any) -> float:
    """``trainer.fit`` on a datamodule or on ``train_dataloaders`` / ``val_dataloaders``;
    returns the best value of the monitored metric (its weights are in ``module``).

    A Ctrl-C or SIGTERM during it surfaces as ``KeyboardInterrupt``: Lightning turns Ctrl-C
    into ``sys.exit(1)`` (leaving SIGINT ignored) and SIGTERM into a ``SystemExit`` whose
    status is 0, so a stopped run would otherwise look like success or like a crash.
    """
    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, datamodule=datamodule, **dataloaders)
    except SystemExit as stop:
        if trainer.interrupted:
            raise KeyboardInterrupt from stop
        raise
    finally:
        if sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)
    best = trainer.callback_metrics.get(BEST)
    return float(best) if best is not None else math.nan


def epochs_trained(trainer: pl.Trainer) -> int:
    """Epochs the last ``fit`` ran (also after ``ddp_spawn``, whose workers ran them)."""
    value = trainer.callback_metrics.get(EPOCHS)
    return int(value) if value is not None else int(trainer.current_epoch)


def best_epoch(trainer: pl.Trainer) -> int:
    """The epoch whose weights the last ``fit`` kept."""
    value = trainer.callback_metrics.get(BEST_EPOCH)
    return int(value) if value is not None else 0
