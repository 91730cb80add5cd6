"""Run tracking: a CSV logger always, Weights & Biases through Lightning's WandbLogger.

W&B mode ``auto`` means online when ``WANDB_API_KEY`` is set, offline otherwise (runs
land in ``RUN_DIR/wandb`` and can be pushed later with ``wandb sync``); ``disabled``
turns it off. Nothing here needs the network unless the user asks for online.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, Logger

WANDB_MODES = ("auto", "online", "offline", "disabled")


def resolve_wandb_mode(mode: str | None) -> str:
    mode = (mode or "auto").lower()
    if mode not in WANDB_MODES:
        from genre_tagger.errors import UserInputError

        raise UserInputError(f"W&B mode must be one of {', '.join(WANDB_MODES)}, got {mode!r}")
    if mode == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return mode


def _adopt_existing_rows(logger: CSVLogger) -> None:
    """Keep the epochs another process logged when this process first writes to the CSV log.

    Under ``ddp_spawn`` a worker logs the epochs; this process's writer has not seen them,
    and Lightning's writer, when created here, deletes the metrics file it finds. Read it
    first and hand its rows and columns to the writer.
    """
    path = Path(logger.log_dir) / "metrics.csv"
    rows, header = [], []
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows, header = list(reader), list(reader.fieldnames or [])
    writer = logger.experiment
    if rows and not path.is_file():
        writer.metrics = [*rows, *writer.metrics]
    writer.metrics_keys = list(dict.fromkeys([*header, *writer.metrics_keys]))


class RunTracker:
    """The loggers of one training run, plus helpers to log tables and summaries to W&B."""

    def __init__(
        self,
        run_dir: Path,
        logger_config: dict,
        run_name: str,
        config: dict,
        group: str | None = None,
        tags: list[str] | None = None,
        enabled: bool = True,
    ):
        """``enabled`` False (ranks other than 0 of a multi-process run): no loggers at all."""
        self.loggers: list[Logger] = []
        self.wandb_logger = None
        self.wandb_mode = "disabled"
        if not enabled:
            return
        if logger_config.get("csv", True):
            self.loggers.append(CSVLogger(save_dir=str(run_dir), name="logs", version=run_name))
        wandb_config = dict(logger_config.get("wandb") or {})
        self.wandb_mode = resolve_wandb_mode(wandb_config.pop("mode", "auto"))
        if self.wandb_mode != "disabled":
            os.environ.setdefault("WANDB_SILENT", "true")
            from pytorch_lightning.loggers import WandbLogger

            self.wandb_logger = WandbLogger(
                name=run_name, save_dir=str(run_dir), mode=self.wandb_mode, group=group, tags=tags,
                config=config, **wandb_config,
            )
            self.loggers.append(self.wandb_logger)

    def log_summary(self, values: dict[str, Any], prefix: str = "") -> None:
        """Final numbers: into the W&B run summary (and as one CSV metrics row)."""
        numeric = {f"{prefix}{k}": v for k, v in values.items() if isinstance(v, (int, float))}
        if self.wandb_logger is not None:
            self.wandb_logger.experiment.summary.update(numeric)
        for logger in self.loggers:
            if isinstance(logger, CSVLogger):
                _adopt_existing_rows(logger)
                logger.log_metrics(numeric)
                logger.save()

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        """A W&B Table (e.g. the per-label metrics); skipped without W&B."""
        if self.wandb_logger is None or not rows:
            return
        columns = list(dict.fromkeys(key for row in rows for key in row))  # rows may differ in keys
        self.wandb_logger.log_table(key=name, columns=columns, data=[[row.get(c) for c in columns] for row in rows])

    def finish(self) -> None:
        if self.wandb_logger is not None:
            import wandb

            wandb.finish()
