"""The LightningModule: loss, validation metric, optimizer. The model itself is a plain nn.Module."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from genre_tagger.metrics import macro_roc_auc
from genre_tagger.models.tagger import GenreTagger

OptimizerFactory = Callable[..., torch.optim.Optimizer]  # (parameters, **overrides) -> optimizer
SchedulerFactory = Callable[..., Any]  # (optimizer, max_epochs=...) -> epoch-wise LR scheduler


def _float32(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Preloaded inputs may be kept in half precision to save memory; compute in float32."""
    return {k: v.float() if v.is_floating_point() else v for k, v in inputs.items()}


class TaggerModule(pl.LightningModule):
    """Trains a ``GenreTagger`` on raw batches (end to end) or on cached-embedding batches.

    A batch holding ``"embeddings"`` goes through ``logits_from_embeddings``; any other
    batch goes through the encoders. Validation logs ``val_macro_roc_auc`` (over every
    rank's albums under DDP) for model selection and early stopping.

    ``optimizer(parameters)`` and ``scheduler(optimizer, max_epochs=...)`` are factories built
    from the config (``functools.partial`` of a class_path); ``lr`` overrides the
    optimizer's rate for one stage.
    """

    def __init__(self, model: GenreTagger, loss: nn.Module, optimizer: OptimizerFactory,
                 scheduler: SchedulerFactory | None = None, lr: float | None = None):
        super().__init__()
        self.model = model
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.lr = lr
        self._val_scores: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        if "embeddings" in batch:
            return self.model.logits_from_embeddings(batch["embeddings"], batch["present"])
        raw = {name: _float32(batch[name]) for name in self.model.modalities}
        return self.model(raw)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self.logits(batch), batch["labels"])
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["labels"]),
                 sync_dist=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self.logits(batch)
        self.log("val_loss", self.loss(logits, batch["labels"]), on_epoch=True, batch_size=len(batch["labels"]),
                 sync_dist=True)
        self._val_scores.append(torch.sigmoid(logits).detach())
        self._val_targets.append(batch["labels"].detach())

    def on_validation_epoch_end(self) -> None:
        if not self._val_scores:
            return
        scores, targets = torch.cat(self._val_scores), torch.cat(self._val_targets)
        self._val_scores.clear()
        self._val_targets.clear()
        if self.trainer.world_size > 1:  # every rank computes the metric over all ranks' albums
            scores = self.all_gather(scores).flatten(0, 1)
            targets = self.all_gather(targets).flatten(0, 1)
        auc = macro_roc_auc(targets.cpu().numpy(), scores.float().cpu().numpy())
        # Equal on every rank already (gathered); sync_dist keeps Lightning's reduction explicit.
        self.log("val_macro_roc_auc", torch.tensor(0.0 if np.isnan(auc) else auc), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        parameters = [p for p in self.parameters() if p.requires_grad]
        overrides = {"lr": self.lr} if self.lr is not None else {}
        optimizer = self.optimizer_factory(parameters, **overrides)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, max_epochs=max(1, int(self.trainer.max_epochs or 1)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
