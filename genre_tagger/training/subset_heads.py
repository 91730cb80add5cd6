"""Fitting per-subset deep heads (models/subset_heads.py) on cached embeddings, after stage 2.

For each proper subset of the tagger's modalities with at least ``min_val_albums`` val
albums that have all of them: a ``SubsetHead`` of the fused head's architecture, newly
initialised and trained as the fused head trains (``fit_head``: the same Lightning recipe,
modality dropout among the subset's modalities, early stopping on val) with only that
subset's embeddings: the model `ablate` trains for that subset. The probes' stack fitted
next on its val logits (training/probes.py) turns it into the subset model, and the albums
with exactly that subset get ``blend`` x the subset model's scores + ``1 - blend`` x the full
model's. Averaging rather than choosing one by val: on 50-150 val albums the choice is
noise, and the two models' errors differ.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from genre_tagger.errors import UserInputError
from genre_tagger.features.store import ModalityFeatures
from genre_tagger.metrics import evaluable_labels, macro_roc_auc
from genre_tagger.models.modality_dropout import drop_modalities
from genre_tagger.models.subset_heads import SubsetHead, subset_key
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.training.probes import fit_stacking, fused_head_logits

# (a module with ``logits_from_embeddings``, the modalities it reads) -> its best val macro
# ROC-AUC, the module left holding that epoch's weights: the fused head's training recipe
HeadFitter = Callable[[nn.Module, list[str]], float]


@dataclass
class SubsetHeadSettings:
    """The config's optional ``subset_heads`` section (these are its defaults)."""

    enabled: bool = True
    min_val_albums: int = 50  # as a per-subset stack needs
    blend: float = 0.75  # the subset model's share of its albums' scores, the full model's the rest

    def __post_init__(self) -> None:
        if not 0.0 <= self.blend <= 1.0:
            raise UserInputError(f"subset_heads.blend must be between 0 and 1, got {self.blend}")


@dataclass
class SubsetHeadReport:
    """Per subset fitted: (the fused head's val macro ROC-AUC on its albums, the subset head's)."""

    subsets: dict[str, tuple[float, float]] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        if not self.subsets:
            return "subset heads: none fitted (no subset with enough val albums)"
        parts = ", ".join(f"{name} {own:.3f} vs {fused:.3f}" for name, (fused, own) in self.subsets.items())
        return f"subset heads, val macro ROC-AUC own vs fused head ({self.seconds:.0f} s): {parts}"


class SubsetHeadTrainee(nn.Module):
    """``head`` in the shape the fused head trains in: ``logits_from_embeddings({m: [B, D_m]},
    {m: [B]}) -> [B, L]`` reading only the head's modalities, and while training hiding
    each with ``modality_dropout`` (at least one kept), as the tagger does."""

    def __init__(self, head: SubsetHead, order: list[str], modality_dropout: float):
        super().__init__()
        self.head, self.order, self.modality_dropout = head, list(order), modality_dropout

    def logits_from_embeddings(self, embeddings: dict[str, torch.Tensor],
                               present: dict[str, torch.Tensor]) -> torch.Tensor:
        reference = next(iter(embeddings.values()))
        absent = torch.zeros(reference.shape[0], dtype=torch.bool, device=reference.device)
        mask = torch.stack([present[m].bool() if m in self.head.modalities and m in present else absent
                            for m in self.order], dim=1)
        if self.training:
            mask = drop_modalities(mask, self.modality_dropout)
        return self.head({m: e for m, e in embeddings.items() if m in self.head.modalities}, mask, self.order)


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
    """The head's eval-mode logits ``[n, L]`` (``shared``: the tagger's projections, for a
    head from a file whose heads had none of their own)."""
    head.eval()
    embeddings, present = inputs
    parts = [head({m: e[s:s + chunk] for m, e in embeddings.items()}, present[s:s + chunk], order, shared)
             for s in range(0, len(present), chunk)]
    return torch.cat(parts)


def train_subset_head(tagger: GenreTagger, subset: tuple[str, ...], fit_head: HeadFitter, blend: float,
                      seed: int) -> SubsetHead:
    """A newly initialised head for ``subset`` trained by ``fit_head`` (its best val epoch
    kept); the seed alone fixes its initial weights and the order it meets the albums in."""
    with torch.random.fork_rng():  # the caller's random state does not move
        torch.manual_seed(seed)
        head = SubsetHead.copied_from(tagger, list(subset), fresh=True)
        fit_head(SubsetHeadTrainee(head, tagger.modalities, tagger.modality_dropout), list(subset))
    head.cpu().eval()
    head.blend.fill_(blend)  # its share until blend_subset_heads refits it with the probes
    return head


def fit_subset_heads(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
                     splits: dict[str, np.ndarray], fit_head: HeadFitter,
                     settings: SubsetHeadSettings | None = None, seed: int = 0) -> SubsetHeadReport:
    """Train a head per proper subset with enough val albums (module docstring), replacing
    the tagger's subset heads; returns their val AUCs beside the fused head's on the albums
    that have the subset (for the log). ``targets [N, L]``, ``splits``' rows index it."""
    settings = settings or SubsetHeadSettings()
    report, clock = SubsetHeadReport(), time.monotonic()
    tagger.subset_heads.clear()
    order = tagger.modalities
    if not settings.enabled or len(order) < 2:
        return report
    val = splits["val"]
    for size in range(1, len(order)):
        for subset in itertools.combinations(order, size):
            val_rows = val[np.all([features[m].present[val] for m in subset], axis=0)]
            y_val = targets[val_rows]
            if len(val_rows) < settings.min_val_albums or not len(evaluable_labels(y_val)):
                continue
            fused_val = fused_head_logits(tagger, {m: features[m] for m in subset}, val_rows, subset_heads=False).numpy()
            head = train_subset_head(tagger, subset, fit_head, settings.blend, seed)
            own_val = head_logits(head, subset_inputs(features, subset, val_rows, order), order).numpy()
            report.subsets[subset_key(subset)] = (macro_roc_auc(y_val, fused_val), macro_roc_auc(y_val, own_val))
            tagger.add_subset_head(subset, head)
    report.seconds = time.monotonic() - clock
    return report


def blend_subset_heads(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
                       val: np.ndarray, blend: float) -> dict[str, float]:
    """Score each subset head's albums by ``(1 - blend)`` x the full model's stacked logits +
    ``blend`` x the subset model's: its head and its views' probes stacked on the val albums
    that have the subset (``fit_stacking``, as `ablate` stacks a head trained on the subset).

    Both are linear in the fused head's, the subset head's and the probes' logits, so the
    average is stored as the pattern's stack (``probes.subset_stack`` and ``subset_offset``)
    with the head's ``blend`` share of the deep logits. Run after ``fit_probes``. Without
    fitted probes the heads keep the share ``train_subset_head`` gave them (the same
    ``blend``): their raw logits are blended. Returns each subset model's stacked
    val macro ROC-AUC (in-sample: its stack is fitted on those albums)."""
    probes, order, found = tagger.probes, tagger.modalities, {}
    for name, head in tagger.subset_heads.items():
        rows = val[np.all([features[m].present[val] for m in head.modalities], axis=0)]
        if probes is None or not bool(probes.fitted) or not len(evaluable_labels(targets[rows])):
            continue
        embeddings, present = subset_inputs(features, tuple(head.modalities), rows, order)
        views = [k for k, probe in enumerate(probes.probes) if probe.view.modality in head.modalities]
        with torch.no_grad():
            every_view = probes.view_logits(embeddings, present, order, len(rows))
        components = torch.stack([head_logits(head, (embeddings, present), order, tagger.projections),
                                  *(every_view[k] for k in views)])
        weights, offset, _, _, found[name] = fit_stacking(components, targets[rows])
        pattern = probes.pattern(head.modalities)
        fitted = bool(probes.subset_fitted[pattern])
        stack = (probes.subset_stack[pattern] if fitted else probes.stack).clone() * (1 - blend)
        stack[[k + 1 for k in views]] += blend * weights[1:]
        deep = float(stack[0]) + blend * float(weights[0])  # (1 - blend) a + blend b
        stack[0] = deep
        if deep > 0:  # the head's share of the one deep term: blend b / ((1 - blend) a + blend b)
            head.blend.fill_(blend * float(weights[0]) / deep)
        probes.subset_stack[pattern] = stack
        probes.subset_offset[pattern] = (1 - blend) * (probes.subset_offset[pattern] if fitted else probes.offset) \
            + blend * offset
        probes.subset_fitted[pattern] = True
    return found
