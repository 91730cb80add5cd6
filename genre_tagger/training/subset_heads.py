"""Fitting per-subset deep heads (models/subset_heads.py) on cached embeddings, after stage 2.

For each proper subset of the tagger's modalities with at least ``min_val_albums`` val
albums that have all of them: a ``SubsetHead`` starts as a copy of the fused head's
projections, fusion and MLP, and is fine-tuned for a fixed number of epochs on the training
albums that have the subset's modalities, with only those present (the fused head's loss).
A second candidate starts newly initialised and trains longer (as ``ablate``'s head for the
subset would, without early stopping); the better of the two on val is judged. Val takes no
part in the training, so it judges it: the head is kept only when its val
macro ROC-AUC on those albums (scored with the subset alone) beats the fused head's by more
than ``margin``.
The probes' stacks, fitted next (training/probes.py), are fitted on the fused head's logits
throughout (the global one and each pattern's) and applied to a kept head's logits as they
are: a stack fitted on the val logits of the head that val chose overweights it. Albums with
every modality therefore score exactly as without subset heads.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from genre_tagger.features.store import ModalityFeatures
from genre_tagger.metrics import evaluable_labels, macro_roc_auc
from genre_tagger.models.subset_heads import SubsetHead, subset_key
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.training.probes import fused_head_logits


@dataclass
class SubsetHeadSettings:
    """The config's optional ``subset_heads`` section (these are its defaults)."""

    enabled: bool = True
    epochs: int = 10
    lr: float = 0.0003
    weight_decay: float = 0.0001
    batch_size: int = 64
    min_val_albums: int = 50  # as a per-subset stack needs
    margin: float = 0.002  # val macro ROC-AUC a head must gain over the fused head to be kept
    # a second candidate, newly initialised, trained ``fresh_epochs`` at ``fresh_lr`` (0 epochs: none);
    # the better of the two on val is the one judged
    fresh_epochs: int = 40
    fresh_lr: float = 0.001
    own_projections: bool = True  # tune a copy of the projections too (else share the tagger's, frozen)


@dataclass
class SubsetHeadReport:
    """Per subset tried: (fused head's val macro ROC-AUC on its albums, the subset head's, kept,
    the head's start: "warm" or "fresh")."""

    subsets: dict[str, tuple[float, float, bool, str]] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        if not self.subsets:
            return "subset heads: none tried (no subset with enough val albums)"
        parts = ", ".join(f"{name} {own:.3f} {start}{' (kept)' if kept else ''} vs {fused:.3f}"
                          for name, (fused, own, kept, start) in self.subsets.items())
        return f"subset heads, val macro ROC-AUC own vs fused head ({self.seconds:.0f} s): {parts}"


def subset_inputs(features: dict[str, ModalityFeatures], subset: tuple[str, ...], rows: np.ndarray,
                  order: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``({m: [n, D_m]}, present [n, M])`` of ``rows`` with only ``subset`` present."""
    embeddings = {m: torch.from_numpy(np.asarray(features[m].embeddings[rows], dtype=np.float32)) for m in subset}
    present = torch.zeros(len(rows), len(order), dtype=torch.bool)
    for m in subset:
        present[:, order.index(m)] = torch.from_numpy(np.asarray(features[m].present[rows], dtype=bool))
    return embeddings, present


@torch.no_grad()
def head_logits(head: SubsetHead, inputs: tuple[dict[str, torch.Tensor], torch.Tensor], order: list[str],
                shared: nn.ModuleDict | None = None, chunk: int = 4096) -> torch.Tensor:
    """The head's eval-mode logits ``[n, L]`` (``shared``: the tagger's projections)."""
    head.eval()
    embeddings, present = inputs
    parts = [head({m: e[s:s + chunk] for m, e in embeddings.items()}, present[s:s + chunk], order, shared)
             for s in range(0, len(present), chunk)]
    return torch.cat(parts)


def fine_tune(head: SubsetHead, inputs: tuple[dict[str, torch.Tensor], torch.Tensor], targets: torch.Tensor,
              loss: nn.Module, order: list[str], settings: SubsetHeadSettings, seed: int = 0,
              shared: nn.ModuleDict | None = None, fresh: bool = False) -> None:
    """``settings.epochs`` epochs of AdamW at ``settings.lr`` (``fresh``: ``fresh_epochs`` at
    ``fresh_lr``) on ``inputs`` (``{m: [n, D_m]}``, ``[n, M]``) and
    ``targets [n, L]``, shuffled by ``seed``. ``shared`` (the tagger's projections, for the
    modalities the head has none of its own for) is read, never trained."""
    embeddings, present = inputs
    projected = None
    if shared is not None:  # frozen: projected once, the head then trains on the tokens
        with torch.no_grad():
            embeddings = {m: e if m in head.projections else shared[m](e.float()) for m, e in embeddings.items()}
        projected = nn.ModuleDict({m: nn.Identity() for m in embeddings if m not in head.projections})
    generator = torch.Generator().manual_seed(seed)
    epochs, lr = (settings.fresh_epochs, settings.fresh_lr) if fresh else (settings.epochs, settings.lr)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=settings.weight_decay)
    head.train()
    with torch.random.fork_rng():  # dropout draws do not move the caller's random state
        torch.manual_seed(seed)
        for _ in range(epochs):
            order_rows = torch.randperm(len(targets), generator=generator)
            for start in range(0, len(order_rows), settings.batch_size):
                batch = order_rows[start:start + settings.batch_size]
                optimizer.zero_grad()
                value = loss(head({m: e[batch] for m, e in embeddings.items()}, present[batch], order, projected),
                             targets[batch])
                value.backward()
                optimizer.step()
    head.eval()


def best_candidate(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
                   subset: tuple[str, ...], rows: tuple[np.ndarray, np.ndarray], loss: nn.Module,
                   settings: SubsetHeadSettings, seed: int) -> tuple[SubsetHead, np.ndarray, str]:
    """The warm-started head and (``fresh_epochs`` > 0) a newly initialised one, each trained
    on the ``rows[0]`` (train) albums; the better on ``rows[1]`` (val): ``(head, its val
    logits [n_val, L], "warm" | "fresh")``."""
    order, (train_rows, val_rows) = tagger.modalities, rows
    shared = None if settings.own_projections else tagger.projections
    train_inputs = subset_inputs(features, subset, train_rows, order)
    val_inputs = subset_inputs(features, subset, val_rows, order)
    y_train = torch.from_numpy(targets[train_rows].astype(np.float32))
    best = None
    for start in ("warm", "fresh") if settings.fresh_epochs > 0 else ("warm",):
        with torch.random.fork_rng():  # a fresh head's initial weights depend on the seed alone
            torch.manual_seed(seed)
            head = SubsetHead.copied_from(tagger, list(subset), fresh=start == "fresh",
                                          own_projections=settings.own_projections)
        fine_tune(head, train_inputs, y_train, loss, order, settings, seed, shared, fresh=start == "fresh")
        val_logits = head_logits(head, val_inputs, order, shared).numpy()
        auc = macro_roc_auc(targets[val_rows], val_logits)
        if best is None or auc > best[0]:
            best = (auc, head, val_logits, start)
    return best[1], best[2], best[3]


def fit_subset_heads(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
                     splits: dict[str, np.ndarray], loss: nn.Module,
                     settings: SubsetHeadSettings | None = None, seed: int = 0) -> SubsetHeadReport:
    """Fit, judge and keep a deep head per proper subset (module docstring). Replaces the
    tagger's subset heads; returns what was tried. ``targets [N, L]``, ``splits``' rows index it."""
    settings = settings or SubsetHeadSettings()
    report, clock = SubsetHeadReport(), time.monotonic()
    tagger.subset_heads.clear()
    order = tagger.modalities
    if not settings.enabled or len(order) < 2:
        return report
    train, val = splits["train"], splits["val"]
    for size in range(1, len(order)):
        for subset in itertools.combinations(order, size):
            has = [np.all([features[m].present[rows] for m in subset], axis=0) for rows in (train, val)]
            train_rows, val_rows = train[has[0]], val[has[1]]
            y_val = targets[val_rows]
            if len(val_rows) < settings.min_val_albums or not len(train_rows) or not len(evaluable_labels(y_val)):
                continue
            fused_val = fused_head_logits(tagger, {m: features[m] for m in subset}, val_rows).numpy()
            head, own_val, start = best_candidate(tagger, features, targets, subset, (train_rows, val_rows), loss,
                                                  settings, seed)
            fused, own = macro_roc_auc(y_val, fused_val), macro_roc_auc(y_val, own_val)
            kept = own > fused + settings.margin
            report.subsets[subset_key(subset)] = (fused, own, kept, start)
            if kept:
                tagger.add_subset_head(subset, head)
    report.seconds = time.monotonic() - clock
    return report
