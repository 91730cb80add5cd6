"""Out-of-fold genre probabilities: heads that never saw the album's own labels.

The head is a multi-label logistic regression (``genre_tagger.logistic``) on every feature
view of every modality the tagger has, concatenated, plus the modalities' presence flags:
dense views standardised per column, each view (and the flags) scaled to unit mean squared
norm over the albums that have it, so that a wide view (thousands of tf-idf terms) does not drown a
narrow one; an absent modality's view is zero. With a few hundred to a few thousand labelled
albums and thousands of columns the fit runs on the Gram matrix instead (``kernel_features``:
the same logistic regression, exactly, in at most ``n`` dimensions).

Labelled albums are split into ``FOLDS`` folds (seeded, independent of the labels); each fold's
probabilities come from a head fitted on the other folds, with its L2 strength chosen by
``INNER_FOLDS``-fold cross-validation inside those folds (macro ROC-AUC, as everywhere in the
project). An album's own labels therefore reach neither the head that scores it nor the choice
of that head's regularisation. Column statistics use no labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from genre_tagger.features import ModalityFeatures
from genre_tagger.logistic import base_rate_logits, fit_logistic
from genre_tagger.metrics import macro_roc_auc
from genre_tagger.models.probes import encoder_views
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.selection import fold_of, standardized

FOLDS, INNER_FOLDS = 5, 3
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
MAX_ITER = 100
EIGEN_FLOOR = 1e-8  # relative: smaller eigenvalues of the Gram matrix are dropped


@dataclass
class OutOfFold:
    """``probabilities [n, L]`` out of fold, ``fold [n]``, the C each fold's head was fitted with;
    ``linear [n, L]``: the logistic heads' own probabilities where ``probabilities`` blend more."""

    probabilities: np.ndarray
    fold: np.ndarray
    chosen_c: list[float]
    linear: np.ndarray | None = None


def view_matrices(model: GenreTagger, features: dict[str, ModalityFeatures], rows: np.ndarray) -> list[np.ndarray]:
    """The head's inputs for ``rows``, view by view: ``[len(rows), D_v]`` float64 each, the last
    one the presence flags ``[len(rows), M]``; see the module docstring for the scaling."""
    present = np.stack([np.asarray(features[m].present[rows], bool) for m in model.modalities], axis=1)
    views = []
    for column, modality in enumerate(model.modalities):
        has = present[:, column]
        for view in encoder_views(modality, model.encoders[modality]):
            x = np.asarray(features[modality].embeddings[rows, view.start:view.end], dtype=np.float64)
            if not view.sparse and has.sum() > 1:
                std = x[has].std(axis=0)
                alive = std > max(1e-8, 1e-5 * float(std.max(initial=0.0)))
                x = (x - x[has].mean(axis=0)) / np.where(alive, std, 1.0)
            views.append(_unit_norm(x * has[:, None], has))
    views.append(_unit_norm(present.astype(np.float64), present.any(axis=1)))
    return views


def _unit_norm(x: np.ndarray, has: np.ndarray) -> np.ndarray:
    """``x`` scaled to mean squared row norm 1 over the rows in ``has``."""
    norm = float((x[has] ** 2).sum(axis=1).mean()) if has.any() else 0.0
    return x / np.sqrt(norm) if norm > 0 else x


def gram_matrix(views: list[np.ndarray]) -> np.ndarray:
    """``[n, n]``: the inner products of the concatenated views."""
    return sum(v @ v.T for v in views)


def kernel_features(kernel: np.ndarray, fit: np.ndarray, other: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates of the ``fit`` rows and the ``other`` rows in the span of the ``fit`` rows:
    a logistic regression with L2 penalty on them is the one on the concatenated views (the
    optimal weights lie in that span; its basis is orthonormal, so the penalty is the same)."""
    values, vectors = np.linalg.eigh(kernel[np.ix_(fit, fit)])
    keep = values > EIGEN_FLOOR * max(float(values.max(initial=0.0)), 1e-12)
    values, vectors = values[keep], vectors[:, keep]
    fit_x = vectors * np.sqrt(values)
    other_x = kernel[np.ix_(other, fit)] @ (vectors / np.sqrt(values))
    return torch.from_numpy(fit_x.astype(np.float32)), torch.from_numpy(other_x.astype(np.float32))


def logits_along_grid(x_fit: torch.Tensor, y_fit: torch.Tensor, x_other: torch.Tensor,
                      grid: tuple[float, ...]) -> dict[float, np.ndarray]:
    """``{C: logits of the other rows [n_other, L]}``, fits warm-started from the strongest penalty."""
    start = (torch.zeros(x_fit.shape[1], y_fit.shape[1]), base_rate_logits(y_fit))
    out = {}
    for c in sorted(grid):
        start = fit_logistic(x_fit, y_fit, c, start, max_iter=MAX_ITER)
        out[c] = (x_other @ start[0] + start[1]).numpy()
    return out


def choose_c(kernel: np.ndarray, targets: np.ndarray, rows: np.ndarray, grid: tuple[float, ...],
             inner_folds: int, seed: int) -> float:
    """The C whose ``inner_folds``-fold out-of-fold logits over ``rows`` (each fold's
    standardised per label, then pooled) have the best macro ROC-AUC; the middle of the grid
    when no label can be ranked."""
    if len(grid) == 1 or inner_folds < 2 or len(rows) < 2 * inner_folds:
        return grid[len(grid) // 2]
    fold = fold_of(len(rows), inner_folds, seed + 1)
    pooled = {c: np.zeros((len(rows), targets.shape[1])) for c in grid}
    for k in range(inner_folds):
        fit, held = rows[fold != k], rows[fold == k]
        x_fit, x_held = kernel_features(kernel, fit, held)
        y_fit = torch.from_numpy(targets[fit].astype(np.float32))
        for c, logits in logits_along_grid(x_fit, y_fit, x_held, grid).items():
            pooled[c][fold == k] = standardized(logits)
    aucs = {c: macro_roc_auc(targets[rows], pooled[c]) for c in grid}
    scored = {c: a for c, a in aucs.items() if np.isfinite(a)}
    return max(scored, key=lambda c: (scored[c], c)) if scored else grid[len(grid) // 2]


def out_of_fold(kernel: np.ndarray, targets: np.ndarray, folds: int = FOLDS, inner_folds: int = INNER_FOLDS,
                grid: tuple[float, ...] = C_GRID, seed: int = 0, progress: bool = True) -> OutOfFold:
    """Out-of-fold probabilities ``[n, L]`` of the albums whose Gram matrix is ``kernel [n, n]``
    and whose genres are ``targets [n, L]`` (see the module docstring)."""
    n = len(targets)
    if n < 2:
        raise ValueError("out-of-fold scores need at least two labelled albums")
    folds = max(2, min(folds, n))
    fold = fold_of(n, folds, seed)
    probabilities = np.zeros(targets.shape, dtype=np.float64)
    chosen = []
    for k in tqdm(range(folds), desc="out-of-fold heads", unit="fold", disable=not progress):
        fit, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        c = choose_c(kernel, targets, fit, grid, inner_folds, seed + k)
        x_fit, x_held = kernel_features(kernel, fit, held)
        logits = logits_along_grid(x_fit, torch.from_numpy(targets[fit].astype(np.float32)), x_held, (c,))[c]
        probabilities[held] = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        chosen.append(float(c))
    return OutOfFold(probabilities, fold, chosen)
