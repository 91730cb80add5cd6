"""Choosing a regulariser on small labelled sets: the one rule the model's linear probes
(``training/probes.py``) and the simple-features reference (``baselines/reference.py``)
share, so that neither side gets a better protocol than the other.

With fewer than ``MAX_VAL_FOR_FOLDS`` val albums, C is chosen by macro ROC-AUC over the val
albums pooled with ``FOLDS``-fold out-of-fold scores of the training albums (a val split of
a few dozen albums picks C by chance as often as not); with more, on val alone. Scores of
different fits are standardised per label before pooling (``standardized``).
"""

from __future__ import annotations

import numpy as np

from genre_tagger.metrics import macro_roc_auc

FOLDS, MAX_VAL_FOR_FOLDS = 5, 200


def folds_for(n_val: int, folds: int = FOLDS, max_val: int = MAX_VAL_FOR_FOLDS) -> int:
    """How many folds to pool beside a val split of ``n_val`` albums; 0: val alone."""
    return folds if folds > 1 and n_val < max_val else 0


def fold_of(n: int, folds: int, seed: int = 0) -> np.ndarray:
    """``[n]`` fold numbers 0..folds-1, shuffled, as even as possible."""
    return np.random.default_rng(seed).permutation(n) % folds


def standardized(scores: np.ndarray) -> np.ndarray:
    """Per label centred and at unit spread over the rows of ``scores [n, L]``.

    Pooled out-of-fold scores come from different fits: a strongly penalised fit's scores
    vary little around its fold's base rate, so differences between the folds' intercepts
    would decide the pooled ranking and the selection would be biased against strong
    penalties."""
    scores = np.asarray(scores, dtype=np.float64)
    return (scores - scores.mean(axis=0)) / np.maximum(scores.std(axis=0), 1e-12)


def selection_auc(val_targets: np.ndarray, val_scores: np.ndarray, train_targets: np.ndarray | None = None,
                  out_of_fold: np.ndarray | None = None) -> float:
    """Macro ROC-AUC that picks C: val alone, or val pooled with already standardised
    out-of-fold training scores."""
    if out_of_fold is None:
        return macro_roc_auc(val_targets, val_scores)
    return macro_roc_auc(np.concatenate([train_targets, val_targets]),
                         np.concatenate([out_of_fold, standardized(val_scores)]))
