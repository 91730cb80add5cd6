"""Fitting per-subset deep heads (models/subset_heads.py) on cached embeddings, after stage 2.

For each proper subset of the tagger's modalities with at least ``min_val_albums`` val
albums that have all of them: a ``SubsetHead`` of the fused head's architecture, newly
initialised, trained ``epochs`` epochs on the training albums that have the subset's
modalities, with only those present (the fused head's loss): the head `ablate` would train
for that subset, without its early stopping. Val takes no part in training or choosing it,
so the probes' stack fitted next on its val logits (training/probes.py) weighs it honestly;
its albums then get the average of the full model's stacked scores and the subset model's
(``blend``). Averaging rather than choosing one by val: on 50-150 val albums the choice is
noise, and the two models' errors differ.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from genre_tagger.errors import UserInputError
from genre_tagger.features.store import ModalityFeatures
from genre_tagger.metrics import evaluable_labels, macro_roc_auc
from genre_tagger.models.subset_heads import SubsetHead, subset_key
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.training.probes import fit_stacking, fused_head_logits


@dataclass
class SubsetHeadSettings:
    """The config's optional ``subset_heads`` section (these are its defaults)."""

    enabled: bool = True
    epochs: int = 40
    lr: float = 0.001
    weight_decay: float = 0.0001
    batch_size: int = 64
    min_val_albums: int = 50  # as a per-subset stack needs
    blend: float = 0.5  # the subset model's share of its albums' scores, the full model's the rest
    own_projections: bool = True  # train projections of its own (else share the tagger's, frozen)

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
              shared: nn.ModuleDict | None = None) -> None:
    """``settings.epochs`` epochs of AdamW at ``settings.lr`` on ``inputs`` (``{m: [n, D_m]}``,
    ``[n, M]``) and ``targets [n, L]``, shuffled by ``seed``. ``shared`` (the tagger's
    projections, for the modalities the head has none of its own for) is read, never trained."""
    embeddings, present = inputs
    projected = None
    if shared is not None:  # frozen: projected once, the head then trains on the tokens
        with torch.no_grad():
            embeddings = {m: e if m in head.projections else shared[m](e.float()) for m, e in embeddings.items()}
        projected = nn.ModuleDict({m: nn.Identity() for m in embeddings if m not in head.projections})
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    head.train()
    with torch.random.fork_rng():  # dropout draws do not move the caller's random state
        torch.manual_seed(seed)
        for _ in range(settings.epochs):
            order_rows = torch.randperm(len(targets), generator=generator)
            for start in range(0, len(order_rows), settings.batch_size):
                batch = order_rows[start:start + settings.batch_size]
                optimizer.zero_grad()
                value = loss(head({m: e[batch] for m, e in embeddings.items()}, present[batch], order, projected),
                             targets[batch])
                value.backward()
                optimizer.step()
    head.eval()


def shared_projections(tagger: GenreTagger, settings: SubsetHeadSettings) -> nn.ModuleDict | None:
    """The tagger's projections when subset heads share them (frozen), None when each trains its own."""
    return None if settings.own_projections else tagger.projections


def train_subset_head(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
                      subset: tuple[str, ...], train_rows: np.ndarray, loss: nn.Module,
                      settings: SubsetHeadSettings, seed: int) -> SubsetHead:
    """A newly initialised head for ``subset``, trained on the ``train_rows`` albums."""
    order = tagger.modalities
    with torch.random.fork_rng():  # the initial weights depend on the seed alone
        torch.manual_seed(seed)
        head = SubsetHead.copied_from(tagger, list(subset), fresh=True, own_projections=settings.own_projections)
    y_train = torch.from_numpy(targets[train_rows].astype(np.float32))
    fine_tune(head, subset_inputs(features, subset, train_rows, order), y_train, loss, order, settings, seed,
              shared_projections(tagger, settings))
    head.blend.fill_(settings.blend)  # its share until blend_subset_heads refits it with the probes
    return head


def fit_subset_heads(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
                     splits: dict[str, np.ndarray], loss: nn.Module,
                     settings: SubsetHeadSettings | None = None, seed: int = 0) -> SubsetHeadReport:
    """Train a head per proper subset with enough val albums (module docstring), replacing
    the tagger's subset heads; returns their val AUCs beside the fused head's (for the log:
    nothing is chosen by them). ``targets [N, L]``, ``splits``' rows index it."""
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
            fused_val = fused_head_logits(tagger, {m: features[m] for m in subset}, val_rows, subset_heads=False).numpy()
            head = train_subset_head(tagger, features, targets, subset, train_rows, loss, settings, seed)
            own_val = head_logits(head, subset_inputs(features, subset, val_rows, order), order,
                                  shared_projections(tagger, settings)).numpy()
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
