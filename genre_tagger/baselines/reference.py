"""Simple features + one-vs-rest logistic regression, per modality and fused.

The reference is fitted on ``split=train``, its C chosen on val macro ROC-AUC (when val is
small, together with 5-fold out-of-fold scores of the training albums: the protocol the
model's linear probes use, ``genre_tagger/selection.py``), its thresholds calibrated on
val, and it is scored on the evaluation split with the project's own metrics: the same
rows, labels and protocol as the model's ablation rows. An album without a modality gets
zero features for it (only the intercept speaks), as an absent modality gives the model
nothing either.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from genre_tagger.baselines.features import album_texts, dense_features
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.metrics import calibrate_thresholds, compute_metrics
from genre_tagger.selection import fold_of, folds_for, selection_auc, standardized

C_GRID = (0.01, 0.1, 1.0, 10.0)
TEXT_C_GRID = (1.0, 10.0, 100.0)
TEXT = "text"  # the modality the reference reads as tf-idf of the album's texts, without a loader


@dataclass
class ReferenceResult:
    """``metrics[name]``: tagging metrics (docs/metrics.md) on the evaluation split; name is a
    modality or ``fused``; ``scores[name]``: its probabilities ``[N_eval, L]`` (paired comparisons)."""

    metrics: dict[str, dict] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    chosen_c: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _standardise(matrix: np.ndarray, present: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Z-scores from the present training rows; absent rows become 0 (the training mean)."""
    rows = train[present[train]]
    mean = matrix[rows].mean(axis=0) if len(rows) else 0.0
    std = matrix[rows].std(axis=0) + 1e-6 if len(rows) else 1.0
    return np.where(present[:, None], (matrix - mean) / std, 0.0).astype(np.float32)


def _tfidf(docs: list[str], train: np.ndarray) -> sparse.csr_matrix:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    vectorizer.fit([docs[i] for i in train if docs[i]])
    return vectorizer.transform(docs).tocsr()


def _one_vs_rest(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    return OneVsRestClassifier(LogisticRegression(C=c, solver="liblinear", max_iter=1000))


def _fit_scores(c: float, features, targets: np.ndarray, fit_rows: np.ndarray, score_rows: np.ndarray):
    """The model fitted on ``fit_rows`` and its decision scores ``[len(score_rows), L]``."""
    model = _one_vs_rest(c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(features[fit_rows], targets[fit_rows])
        return model, model.decision_function(features[score_rows])


def _out_of_fold(c: float, features, targets: np.ndarray, train: np.ndarray, folds: int) -> np.ndarray:
    fold = fold_of(len(train), folds)
    scores = np.zeros((len(train), targets.shape[1]))
    for k in range(folds):
        scores[fold == k] = standardized(_fit_scores(c, features, targets, train[fold != k], train[fold == k])[1])
    return scores


def select_c(features, targets: np.ndarray, train: np.ndarray, val: np.ndarray,
             grid: tuple[float, ...]) -> tuple[float, object, np.ndarray, dict[float, float]]:
    """One-vs-rest LR per C on ``train``; the best C by macro ROC-AUC on val, pooled with
    out-of-fold training scores when val is small (``genre_tagger/selection.py``, as the probes).
    Returns ``(C, its model, its val decision scores, {C: selection AUC})``."""
    folds = folds_for(len(val))
    best, tried = None, {}
    for c in grid:
        model, val_scores = _fit_scores(c, features, targets, train, val)
        held_out = _out_of_fold(c, features, targets, train, folds) if folds else None
        tried[c] = selection_auc(targets[val], val_scores, targets[train], held_out)
        if best is None or tried[c] > best[0]:
            best = (tried[c], c, model, val_scores)
    _, c, model, val_scores = best
    return c, model, val_scores, tried


def fit_lr(features, targets: np.ndarray, splits: dict[str, np.ndarray], eval_split: str,
           grid: tuple[float, ...]) -> tuple[dict, float, np.ndarray]:
    """``select_c`` on train/val; test metrics at val-calibrated thresholds, C, test probabilities."""
    c, model, val_scores, _ = select_c(features, targets, splits["train"], splits["val"], grid)
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test_scores = model.decision_function(features[splits[eval_split]])
    thresholds = calibrate_thresholds(targets[splits["val"]], sigmoid(val_scores))
    probabilities = sigmoid(test_scores)
    return compute_metrics(targets[splits[eval_split]], probabilities, thresholds), c, probabilities


def run_reference(
    records: list[AlbumRecord], targets: np.ndarray, splits: dict[str, np.ndarray],
    loaders: dict[str, ModalityLoader], modalities: list[str], eval_split: str = "test",
    num_workers: int = 0, progress: bool = False,
) -> ReferenceResult:
    """The reference per modality in ``modalities`` (audio and image need their loader) and fused."""
    result = ReferenceResult()
    blocks = {}
    train = splits["train"]
    for modality in modalities:
        clock = time.monotonic()
        if modality == TEXT:
            docs, present = album_texts(records)
            blocks[modality] = _tfidf(docs, train)
            grid = TEXT_C_GRID
        else:
            matrix, present = dense_features(records, loaders[modality], num_workers, progress)
            blocks[modality] = sparse.csr_matrix(_standardise(matrix, present, train))
            grid = C_GRID
        result.metrics[modality], result.chosen_c[modality], result.scores[modality] = fit_lr(
            blocks[modality], targets, splits, eval_split, grid)
        result.seconds[modality] = round(time.monotonic() - clock, 1)
    if len(blocks) > 1:
        clock = time.monotonic()
        fused = sparse.hstack([blocks[m] for m in modalities]).tocsr()
        result.metrics["fused"], result.chosen_c["fused"], result.scores["fused"] = fit_lr(
            fused, targets, splits, eval_split, C_GRID + TEXT_C_GRID[1:])
        result.seconds["fused"] = round(time.monotonic() - clock, 1)
    return result
