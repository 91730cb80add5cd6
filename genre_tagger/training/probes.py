"""Fitting the linear probes of a tagger (models/probes.py) on cached embeddings, after stage 2.

Per view: standardise on the present training rows (dense views per column, sparse views
left as they are), fit a multi-label logistic regression with L2 strength ``1/C`` by
L-BFGS for each C of a grid (warm-started from the stronger penalty), keep the C with the
best macro ROC-AUC over the whole grid: on val alone, or, when val is small, on val together
with out-of-fold logits of the training albums (``genre_tagger/selection.py``, the rule the
simple-features reference uses too). Then stack: non-negative weights for the fused head's
logits and each probe's (each centred and scaled to unit spread first) fitted on val by a
pairwise ranking loss (macro ROC-AUC's smooth surrogate), rescaled to the fused head's logit
spread, then per-label offsets by binary cross-entropy for calibrated scores; kept only
when the stack beats the fused head alone on val. This is the simple-features reference's
own protocol (logistic regression, C chosen on val), applied to every view the model has.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from genre_tagger.cpus import torch_threads, usable_cores
from genre_tagger.features.store import ModalityFeatures
from genre_tagger.logistic import base_rate_logits, fit_logistic, matmul
from genre_tagger.metrics import evaluable_labels, macro_roc_auc
from genre_tagger.models.probes import LinearProbes, ViewProbe
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.selection import (
    FOLDS, MAX_VAL_FOR_FOLDS, fold_of, folds_for, selection_auc, standardized,
)

C_GRID = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
SPARSE_DENSITY = 0.2  # below this share of non-zeros a view's matrix is multiplied as sparse
LOGIT_CHUNK = 4096
MAX_PAIRS_PER_LABEL = 20000  # ranking pairs per label in the stack fit (sampled beyond)
MIN_SUBSET_ALBUMS = 50  # val albums with a subset's modalities needed to fit a stack for it (5 folds of 10)


@dataclass
class ProbeReport:
    """What the fit chose: C and val macro ROC-AUC per view, the stacking weights."""

    chosen_c: dict[str, float] = field(default_factory=dict)
    view_val_auc: dict[str, float] = field(default_factory=dict)
    stack: dict[str, float] = field(default_factory=dict)
    deep_val_auc: float = float("nan")
    stacked_val_auc: float = float("nan")
    cv_folds: int = 0  # 0: C chosen on val alone
    # per subset with its own stack: (the global stack's val AUC on its albums, its own)
    subsets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def line(self) -> str:
        if not self.chosen_c:
            return "linear probes: not fitted (no val album with a positive and a negative label)"
        views = ", ".join(f"{v} C={self.chosen_c[v]:g} ({self.view_val_auc[v]:.3f})" for v in self.chosen_c)
        weights = ", ".join(f"{k} {w:.2f}" for k, w in self.stack.items())
        chosen_by = f"C by {self.cv_folds}-fold CV + val" if self.cv_folds else "C by val"
        return (f"linear probes ({chosen_by}): {views}; stacked val macro ROC-AUC {self.stacked_val_auc:.3f} "
                f"(fused head alone {self.deep_val_auc:.3f}); weights: {weights}{self.subsets_text()}")

    def subsets_text(self) -> str:
        if not self.subsets:
            return ""
        parts = ", ".join(f"{name} {own:.3f}{' (kept)' if own > shared else ''} vs {shared:.3f}"
                          for name, (shared, own) in self.subsets.items())
        return f"; per-subset stacks, out-of-fold val macro ROC-AUC own vs global: {parts}"


def set_standardization(probe: ViewProbe, embeddings: np.ndarray, present: np.ndarray, train: np.ndarray) -> None:
    """Mean and scale from the present training rows; sparse views keep mean 0 and scale 1."""
    if probe.view.sparse:
        probe.mean.zero_(), probe.scale.fill_(1.0)
        return
    rows = train[present[train]]
    x = torch.from_numpy(np.asarray(embeddings[rows, probe.view.start:probe.view.end], dtype=np.float32))
    if len(x) < 2:
        probe.mean.zero_(), probe.scale.fill_(1.0)
        return
    std = x.std(dim=0)
    # Dead units (e.g. most of musicnn's mid-end after its ReLUs) vary only by float residue:
    # scaled to unit variance they would be pure noise features, so they keep scale 1.
    alive = std > max(1e-8, 1e-5 * float(std.max()))
    probe.mean.copy_(x.mean(dim=0))
    probe.scale.copy_(torch.where(alive, std, torch.ones_like(std)))


def view_inputs(probe: ViewProbe, features: ModalityFeatures, rows: np.ndarray) -> torch.Tensor:
    """Standardised features ``[len(rows), D]`` of one view, sparse when mostly zeros."""
    view = probe.view  # only the view's columns are copied out of the modality's matrix
    columns = torch.from_numpy(np.asarray(features.embeddings[rows, view.start:view.end], dtype=np.float32))
    x = probe.standardize_columns(columns, torch.from_numpy(features.present[rows]))
    if probe.view.sparse and x.numel() and float((x != 0).float().mean()) < SPARSE_DENSITY:
        return x.to_sparse()
    return x


def out_of_fold_logits(probe: ViewProbe, features: ModalityFeatures, targets: np.ndarray, train: np.ndarray,
                       grid: tuple[float, ...], folds: int) -> dict[float, np.ndarray]:
    """``{C: [len(train), L]}``: each training album's logits from the fit without its fold,
    standardised per fold and label (``selection.standardized``) so that folds pool into one ranking.

    The inputs' standardisation stays the whole training split's (column statistics, no labels)."""
    fold = fold_of(len(train), folds)
    logits = {c: np.zeros((len(train), targets.shape[1]), dtype=np.float32) for c in grid}
    for k in range(folds):
        fit_rows, held = train[fold != k], train[fold == k]
        x_fit, x_held = view_inputs(probe, features, fit_rows), view_inputs(probe, features, held)
        y_fit = torch.from_numpy(targets[fit_rows].astype(np.float32))
        start = (torch.zeros_like(probe.weight), base_rate_logits(y_fit))
        for c in sorted(grid):
            start = fit_logistic(x_fit, y_fit, c, start)
            logits[c][fold == k] = standardized((matmul(x_held, start[0]) + start[1]).numpy())
    return logits


def fit_view(probe: ViewProbe, features: ModalityFeatures, targets: np.ndarray, train: np.ndarray,
             val: np.ndarray, grid: tuple[float, ...] = C_GRID,
             cv_folds: int = 0) -> tuple[float, float, torch.Tensor]:
    """Fit one probe over the C grid; keep the best (on val, or on val and ``cv_folds``-fold
    out-of-fold training logits when ``cv_folds`` > 1). Returns ``(C, val AUC, val logits [n_val, L])``."""
    set_standardization(probe, features.embeddings, features.present, train)
    x_train, x_val = view_inputs(probe, features, train), view_inputs(probe, features, val)
    y_train = torch.from_numpy(targets[train].astype(np.float32))
    held_out = out_of_fold_logits(probe, features, targets, train, grid, cv_folds) if cv_folds > 1 else None
    start = (torch.zeros_like(probe.weight), base_rate_logits(y_train))
    best = None
    # The whole grid: macro ROC-AUC over C is not always unimodal (a tf-idf view can peak
    # both at the strongest penalty, a centroid-like ranking, and again near C = 1-10).
    for c in sorted(grid):
        start = fit_logistic(x_train, y_train, c, start)
        val_logits = matmul(x_val, start[0]) + start[1]
        key = selection_auc(targets[val], val_logits.numpy(), targets[train],
                            held_out[c] if held_out is not None else None)
        if best is None or key > best[1]:
            best = (c, key, start, val_logits)
    c, _, (weight, bias), val_logits = best
    probe.weight.copy_(weight), probe.bias.copy_(bias)
    return c, macro_roc_auc(targets[val], val_logits.numpy()), val_logits


@torch.no_grad()
def tagger_logits(tagger: GenreTagger, features: dict[str, ModalityFeatures], rows: np.ndarray) -> torch.Tensor:
    """The tagger's eval-mode logits ``[len(rows), L]`` from cached embeddings, as it stands
    (probes and subset heads as fitted); modalities missing from ``features`` count as absent."""
    was_training = tagger.training
    tagger.eval()
    try:
        out = []
        for start in range(0, len(rows), LOGIT_CHUNK):
            part = rows[start:start + LOGIT_CHUNK]
            embeddings = {m: torch.from_numpy(np.asarray(f.embeddings[part], dtype=np.float32))
                          for m, f in features.items() if m in tagger.modalities}
            present = {m: torch.from_numpy(f.present[part]) for m, f in features.items() if m in tagger.modalities}
            out.append(tagger.logits_from_embeddings(embeddings, present))
        return torch.cat(out) if out else torch.zeros(0, tagger.n_labels)
    finally:
        tagger.train(was_training)


def fused_head_logits(tagger: GenreTagger, features: dict[str, ModalityFeatures], rows: np.ndarray,
                      subset_heads: bool = True) -> torch.Tensor:
    """``tagger_logits`` with the probes not applied; without ``subset_heads``, the fused
    head's for every album (none routed to a subset head)."""
    heads = tagger.subset_heads
    fitted = tagger.probes.fitted.clone() if tagger.probes is not None else None
    if fitted is not None:
        tagger.probes.fitted.fill_(False)
    if not subset_heads:
        tagger.subset_heads = torch.nn.ModuleDict()
    try:
        return tagger_logits(tagger, features, rows)
    finally:
        if fitted is not None:
            tagger.probes.fitted.copy_(fitted)
        tagger.subset_heads = heads


def ranking_pairs(y: torch.Tensor, max_pairs: int = MAX_PAIRS_PER_LABEL,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positive row, negative row, label, weight) of every label's positive-negative pairs
    (at most ``max_pairs`` per label, sampled); weights make each evaluable label count the
    same, as macro ROC-AUC does. Four ``[P]`` tensors."""
    generator = torch.Generator().manual_seed(seed)
    parts: list[tuple[torch.Tensor, ...]] = []
    evaluable = [label for label in range(y.shape[1]) if 0 < int(y[:, label].sum()) < len(y)]
    for label in evaluable:
        pos, neg = torch.nonzero(y[:, label] > 0.5).flatten(), torch.nonzero(y[:, label] <= 0.5).flatten()
        i, j = torch.meshgrid(pos, neg, indexing="ij")
        i, j = i.flatten(), j.flatten()
        if len(i) > max_pairs:
            keep = torch.randperm(len(i), generator=generator)[:max_pairs]
            i, j = i[keep], j[keep]
        parts.append((i, j, torch.full_like(i, label), torch.full((len(i),), 1.0 / (len(i) * len(evaluable)))))
    if not parts:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, empty, torch.zeros(0)
    return tuple(torch.cat(column) for column in zip(*parts))  # type: ignore[return-value]


def ranking_direction(components: torch.Tensor, y: torch.Tensor, max_iter: int = 200) -> torch.Tensor:
    """Non-negative weights ``[K]`` of ``components [K, n, L]`` minimising a pairwise logistic
    loss: each label's positives above its negatives, every label weighing the same."""
    pos, neg, label, pair_weight = ranking_pairs(y)
    raw = torch.zeros(len(components), requires_grad=True)
    if not len(pos):
        return F.softplus(raw).detach()
    optimizer = torch.optim.LBFGS([raw], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def ranking_loss() -> torch.Tensor:
        optimizer.zero_grad()
        weights = F.softplus(raw)
        scores = (weights.view(-1, 1, 1) * components).sum(dim=0)
        margins = scores[pos, label] - scores[neg, label]
        loss = (F.softplus(-margins) * pair_weight).sum() + 1e-2 * (weights * weights).sum()
        loss.backward()
        return loss

    optimizer.step(ranking_loss)
    return F.softplus(raw).detach()


def calibrated_offsets(logits: torch.Tensor, y: torch.Tensor, max_iter: int = 200) -> torch.Tensor:
    """Per-label offsets ``[L]`` for ``logits [n, L]`` by binary cross-entropy (lightly shrunk)."""
    offset = torch.zeros(y.shape[1], requires_grad=True)
    optimizer = torch.optim.LBFGS([offset], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(logits + offset, y) + 1e-3 * (offset * offset).mean()
        loss.backward()
        return loss

    optimizer.step(loss_fn)
    return offset.detach()


def fit_stack(components: torch.Tensor, y: torch.Tensor, scale: float = 1.0,
              max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """``components [K, n, L]`` logits (centred, unit spread), ``y [n, L]`` -> non-negative
    weights ``[K]`` summing to ``scale`` and offsets ``[L]``.

    The weights decide the ranking of albums within each label, which is what macro ROC-AUC
    reads, so they come from a pairwise ranking loss; binary cross-entropy would trade that
    ranking for calibration on a small val split. They form a convex combination brought to
    ``scale`` (the fused head's logit spread): a scale fitted by cross-entropy can shrink on
    weak signal until float32 rounds every album's score to its label's offset. Per-label
    offsets are then fitted by cross-entropy for calibrated scores.
    """
    direction = ranking_direction(components, y, max_iter)
    weights = direction / direction.sum().clamp(min=1e-12) * scale
    combined = (weights.view(-1, 1, 1) * components).sum(dim=0)
    return weights, calibrated_offsets(combined, y, max_iter)


@dataclass
class ViewFit:
    """One view's fitted probe (its buffers), the C chosen, its val AUC and val logits ``[n_val, L]``."""

    state: dict[str, torch.Tensor]
    c: float
    val_auc: float
    val_logits: torch.Tensor


def fit_view_once(probe: ViewProbe, features: ModalityFeatures, targets: np.ndarray, train: np.ndarray,
                  val: np.ndarray, cv_folds: int, view_fits: dict | None) -> ViewFit:
    """``fit_view``, or the fit ``view_fits`` already holds for this view (then copied into
    ``probe``). A view's probe reads only its own columns, so taggers over the same cached
    embeddings, targets and splits (the ablation's subsets) share one fit per view."""
    key = (probe.view.modality, probe.view.name, probe.view.start, probe.view.end, cv_folds)
    if view_fits is not None and key in view_fits:
        fit = view_fits[key]
        for name, value in fit.state.items():
            getattr(probe, name).copy_(value)
        return fit
    c, auc, val_logits = fit_view(probe, features, targets, train, val, cv_folds=cv_folds)
    fit = ViewFit({name: buffer.clone() for name, buffer in probe.named_buffers()}, c, auc, val_logits)
    if view_fits is not None:
        view_fits[key] = fit
    return fit


def fit_views(probes: list[ViewProbe], features: dict[str, ModalityFeatures], targets: np.ndarray,
              train: np.ndarray, val: np.ndarray, cv_folds: int, view_fits: dict | None) -> list[ViewFit]:
    """``fit_view_once`` for every probe, one view per core at a time, each on one thread.

    A view's fit reads only its view's columns and writes only its own probe, and it draws no
    random numbers, so the fits do not depend on each other or on their order; torch runs
    their operations without holding the interpreter, so the cores work in parallel."""
    def fit(probe: ViewProbe) -> ViewFit:
        return fit_view_once(probe, features[probe.view.modality], targets, train, val, cv_folds, view_fits)

    with torch_threads(1):
        workers = min(len(probes), usable_cores())
        if workers <= 1:
            return [fit(probe) for probe in probes]
        with ThreadPoolExecutor(workers, thread_name_prefix="probe-fit") as pool:
            return list(pool.map(fit, probes))


def fit_stacking(components: torch.Tensor, targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                          float, float]:
    """``components [K, n, L]`` logits (0: the fused head's, then probes'), ``targets [n, L]`` ->
    ``(weights [K], offset [L], weights at unit spread [K], head-alone AUC, stacked AUC)``.

    Each component is centred per label and brought to unit spread, so that the weights'
    penalty treats a strongly regularised probe (small logits around its per-label bias) like
    any other; weights and offsets are mapped back to the raw logits after. The stack is kept
    only when it beats the fused head alone (else weights ``[1, 0, ...]``, offsets 0)."""
    y = torch.from_numpy(targets.astype(np.float32))
    means = components.mean(dim=1, keepdim=True)  # [K, 1, L]
    spread = (components - means).flatten(1).std(dim=1).clamp(min=1e-8)  # [K]
    unit_weights, unit_offset = fit_stack((components - means) / spread.view(-1, 1, 1), y, scale=float(spread[0]))
    weights = unit_weights / spread
    offset = unit_offset - (weights.view(-1, 1) * means[:, 0, :]).sum(dim=0)
    stacked = (weights.view(-1, 1, 1) * components).sum(dim=0) + offset
    deep_auc, stacked_auc = macro_roc_auc(targets, components[0].numpy()), macro_roc_auc(targets, stacked.numpy())
    if not stacked_auc > deep_auc:  # the stack must earn its place on val
        weights, offset = torch.zeros_like(weights), torch.zeros_like(offset)
        weights[0] = 1.0
        unit_weights, stacked_auc = weights * spread, deep_auc
    return weights, offset, unit_weights, deep_auc, stacked_auc


def fit_probes(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
               splits: dict[str, np.ndarray], cv_folds: int = FOLDS, cv_max_val: int = MAX_VAL_FOR_FOLDS,
               view_fits: dict | None = None, per_subset: bool = True) -> ProbeReport:
    """Fit every view's probe, then the stack (module docstring), then, with ``per_subset``,
    a stack per presence pattern (``fit_subset_stacks``). Sets ``tagger.probes``.

    C is chosen with ``cv_folds``-fold out-of-fold logits beside val when val has fewer than
    ``cv_max_val`` albums (with more, val alone is steady enough and folds would cost
    ``cv_folds`` fits per C); ``cv_folds`` 0 or 1: on val alone. ``view_fits``: a dict shared
    by taggers over the same data, so that each view's probe is fitted once (``fit_view_once``)."""
    probes: LinearProbes = tagger.probes
    train, val = splits["train"], splits["val"]
    report = ProbeReport()
    probes.subset_fitted.zero_()
    probes.clear_presence_scale()
    if len(train) < 2 or len(evaluable_labels(targets[val])) == 0:
        # Nothing to choose C or stacking weights on: the probes stay off (the head alone).
        return report
    folds = folds_for(len(val), cv_folds, cv_max_val)
    report.cv_folds = folds
    view_val = []
    for probe, fit in zip(probes.probes, fit_views(probes.probes, features, targets, train, val, folds, view_fits)):
        report.chosen_c[probe.view.name], report.view_val_auc[probe.view.name] = fit.c, fit.val_auc
        view_val.append(fit.val_logits)
    # the fused head's logits for every album, subset heads or not: albums with every
    # modality then get exactly the stack they would get without subset heads
    deep_val = fused_head_logits(tagger, features, val, subset_heads=False)
    weights, offset, unit_weights, report.deep_val_auc, report.stacked_val_auc = fit_stacking(
        torch.stack([deep_val, *view_val]), targets[val])
    probes.stack.copy_(weights), probes.offset.copy_(offset), probes.fitted.fill_(True)
    # Reported at unit spread: comparable between components.
    report.stack = {"fused head": float(unit_weights[0]),
                    **{p.view.name: float(w) for p, w in zip(probes.probes, unit_weights[1:])}}
    if per_subset:
        report.subsets = fit_subset_stacks(tagger, features, targets, val, view_val)
    return report


def out_of_fold_stack_auc(components: torch.Tensor, targets: np.ndarray, fixed: torch.Tensor,
                          folds: int = FOLDS) -> tuple[float, float]:
    """Macro ROC-AUC of ``components [K, n, L]`` stacked by weights fitted without each album's
    fold, and by the ``fixed`` weights ``[K]``; both standardised per fold (``selection``)
    and pooled. NaN where a fold leaves nothing to fit on."""
    fold = fold_of(components.shape[1], folds, seed=1)
    own, shared = np.zeros(components.shape[1:], np.float64), np.zeros(components.shape[1:], np.float64)
    for k in range(folds):
        fit_rows, held = fold != k, fold == k
        if not held.any() or len(evaluable_labels(targets[fit_rows])) == 0:
            return float("nan"), float("nan")
        weights = fit_stacking(components[:, fit_rows], targets[fit_rows])[0]
        own[held] = standardized((weights.view(-1, 1, 1) * components[:, held]).sum(dim=0).numpy())
        shared[held] = standardized((fixed.view(-1, 1, 1) * components[:, held]).sum(dim=0).numpy())
    return macro_roc_auc(targets, own), macro_roc_auc(targets, shared)


def fit_subset_stacks(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
                      val: np.ndarray, view_val: list[torch.Tensor],
                      min_albums: int = MIN_SUBSET_ALBUMS) -> dict[str, tuple[float, float]]:
    """A stack per proper subset of the tagger's modalities, for albums that have only those.

    Fitted as the global stack (``fit_stacking``) on the val albums that have every modality
    of the subset, scored with only the subset present: the fused head's logits restricted
    to it (also where a subset head will score those albums: this stack is the full model's
    half of their average, ``subset_heads.blend_subset_heads``) and the probes of its views (the others' give a constant, their bias). A stack
    fitted on a few dozen albums can rank worse than the global one, so it is kept only
    where, fitted without each album's fold, it ranks those albums better than the global
    stack (``out_of_fold_stack_auc``). Returns ``{subset: (global stack's out-of-fold val
    AUC, the subset's own)}`` for every subset tried. ``view_val``: each probe's val logits
    ``[n_val, L]``, in ``tagger.probes``' order. Albums with every modality keep the global
    stack."""
    probes: LinearProbes = tagger.probes
    found: dict[str, tuple[float, float]] = {}
    for size in range(1, len(probes.modalities)):
        for subset in itertools.combinations(probes.modalities, size):
            rows = np.flatnonzero(np.all([features[m].present[val] for m in subset], axis=0))
            y = targets[val[rows]]
            if len(rows) < min_albums or len(evaluable_labels(y)) == 0:
                continue
            keep = [0] + [k + 1 for k, p in enumerate(probes.probes) if p.view.modality in subset]
            # the fused head's logits even where a subset head will score these albums: this is the
            # full model's stack, which blend_subset_heads averages with the subset model's
            deep = fused_head_logits(tagger, {m: features[m] for m in subset}, val[rows], subset_heads=False)
            components = torch.stack([deep, *(view_val[k - 1][rows] for k in keep[1:])])
            own_auc, global_auc = out_of_fold_stack_auc(components, y, probes.stack[keep])
            found["+".join(subset)] = (global_auc, own_auc)
            if own_auc > global_auc:
                weights, offset = fit_stacking(components, y)[:2]
                pattern = probes.pattern(subset)
                probes.subset_stack[pattern].zero_()
                probes.subset_stack[pattern, keep] = weights  # the absent views' probes weigh 0
                probes.subset_offset[pattern] = offset
                probes.subset_fitted[pattern] = True
    return found
