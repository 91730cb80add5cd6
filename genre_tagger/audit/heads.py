"""Out-of-fold copies of the tagger's own fusion head, fitted on the cached embeddings.

For each fold, a fresh copy of the tagger's projections, fusion and head (its architecture,
newly initialised; the encoders are shared, never run: the embeddings are cached) trains on
the other folds' albums the way stage 2 of training does: the run's loss (positive-weighted
binary cross-entropy), AdamW with the run's learning rate and weight decay, a cosine schedule
down to 5 %, batches of 32 and the tagger's modality dropout. With no album of the fold to
stop on, it trains a fixed budget: ``EPOCHS`` passes (about where stage 2 stops on a
600-album catalog), at least ``MIN_STEPS`` steps (a small catalog's few batches) and at most
``MAX_STEPS``, so the cost stops growing with the catalog beyond ~600 albums. The linear
probes are left out: the Gram-matrix heads (``audit/folds.py``) are the linear part.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from genre_tagger.config import instantiate
from genre_tagger.features import ModalityFeatures
from genre_tagger.losses import BalancedBCEWithLogits
from genre_tagger.models.tagger import GenreTagger

EPOCHS, MIN_STEPS, MAX_STEPS, BATCH, FINAL_LR_FRACTION = 40, 200, 600, 32, 0.05


@dataclass
class HeadSettings:
    """How a fold's head trains (defaults: configs/default.yaml's stage 2)."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = EPOCHS
    min_steps: int = MIN_STEPS
    max_steps: int = MAX_STEPS
    batch_size: int = BATCH
    loss: nn.Module | None = None  # None: BalancedBCEWithLogits(0.5, 10.0)


def head_settings(config: dict) -> HeadSettings:
    """The training run's stage-2 settings from a checkpoint's config (defaults where absent)."""
    optimizer = (config.get("optimizer") or {}).get("init_args") or {}
    loss = instantiate(config["loss"]) if isinstance(config.get("loss"), dict) else None
    return HeadSettings(lr=float(optimizer.get("lr", 1e-3)), weight_decay=float(optimizer.get("weight_decay", 1e-4)),
                        loss=loss if isinstance(loss, nn.Module) else None)


def fresh_head(model: GenreTagger, seed: int) -> GenreTagger:
    """A copy of ``model`` sharing its encoders, with newly initialised projections, fusion
    and head, and no probes or subset heads: ``logits_from_embeddings`` is the fusion head alone."""
    torch.manual_seed(seed)
    clone = copy.deepcopy(model, memo={id(model.encoders): model.encoders})
    clone.probes = None
    clone.taxonomy = None
    if hasattr(clone, "subset_heads"):  # trained on every label: they would score a fold's albums
        clone.subset_heads.clear()
    trained = dict(model.named_parameters())
    for part in (clone.projections, clone.fusion, clone.head):
        for module in part.modules():
            reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
            if module is not part and callable(reset):
                reset()
    with torch.no_grad():  # whatever a fusion module's reset left as trained (it saw every label) starts afresh
        for name, parameter in clone.named_parameters():
            if not name.startswith("encoders.") and torch.equal(parameter, trained[name]) \
                    and parameter.numel() > 1 and not bool((parameter == parameter.flatten()[0]).all()):
                nn.init.normal_(parameter, std=0.02)
    return clone


def train_head(head: GenreTagger, embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
               targets: torch.Tensor, settings: HeadSettings, seed: int) -> None:
    """Stage 2 on ``embeddings {m: [n, D_m]}``, ``present {m: [n]}``, ``targets [n, L]``."""
    params = [p for name, p in head.named_parameters() if not name.startswith("encoders.")]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    n = len(targets)
    steps = min(settings.max_steps, max(settings.min_steps, settings.epochs * math.ceil(n / settings.batch_size)))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION)
                                                 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    loss_fn = copy.deepcopy(settings.loss) if settings.loss is not None else BalancedBCEWithLogits(0.5, 10.0)
    if hasattr(loss_fn, "set_label_frequencies"):
        loss_fn.set_label_frequencies(targets.mean(dim=0))
    generator = torch.Generator().manual_seed(seed)
    step = 0
    head.train()
    while step < steps:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, settings.batch_size):
            rows = order[start:start + settings.batch_size]
            logits = head.logits_from_embeddings({m: e[rows] for m, e in embeddings.items()},
                                                 {m: p[rows] for m, p in present.items()})
            loss = loss_fn(logits, targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step >= steps:
                break
    head.eval()


def out_of_fold_head_logits(model: GenreTagger, features: dict[str, ModalityFeatures], rows: np.ndarray,
                            targets: np.ndarray, fold: np.ndarray, settings: HeadSettings | None = None,
                            seed: int = 0, progress: bool = True) -> np.ndarray:
    """``[len(rows), L]`` logits of each album from the head fitted without its ``fold``."""
    settings = settings or HeadSettings()
    embeddings = {m: torch.from_numpy(np.asarray(features[m].embeddings[rows], dtype=np.float32))
                  for m in model.modalities}
    present = {m: torch.from_numpy(np.asarray(features[m].present[rows], dtype=bool)) for m in model.modalities}
    y = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    logits = np.zeros(targets.shape, dtype=np.float64)
    for k in tqdm(range(int(fold.max()) + 1), desc="out-of-fold fusion heads", unit="fold", disable=not progress):
        fit = torch.from_numpy(np.flatnonzero(fold != k))
        held = torch.from_numpy(np.flatnonzero(fold == k))
        head = fresh_head(model, seed + k)
        train_head(head, {m: e[fit] for m, e in embeddings.items()}, {m: p[fit] for m, p in present.items()},
                   y[fit], settings, seed + k)
        with torch.no_grad():
            out = head.logits_from_embeddings({m: e[held] for m, e in embeddings.items()},
                                              {m: p[held] for m, p in present.items()})
        logits[held.numpy()] = out.double().numpy()
    return logits
