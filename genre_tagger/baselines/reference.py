"""Simple features + one-vs-rest logistic regression, per modality and fused.

The reference is fitted on ``split=train``, its C chosen on val macro ROC-AUC, its
thresholds calibrated on val, and it is scored on the evaluation split with the project's
own metrics: the same rows, labels and protocol as the model's ablation rows. An album
without a modality gets zero features for it (only the intercept speaks), as an absent
modality gives the model nothing either.
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

C_GRID = (0.01, 0.1, 1.0, 10.0)
TEXT_C_GRID = (1.0, 10.0, 100.0)


@dataclass
class ReferenceResult:
    """``metrics[name]``: CONTRACT §3 metrics on the evaluation split; name is a modality or ``fused``."""

    metrics: dict[str, dict] = field(default_factory=dict)
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


def _macro_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    return compute_metrics(targets, scores, np.full(targets.shape[1], 0.5))["macro_roc_auc"]


def fit_lr(features, targets: np.ndarray, splits: dict[str, np.ndarray], eval_split: str,
           grid: tuple[float, ...]) -> tuple[dict, float]:
    """One-vs-rest LR per C on train, best C on val; test metrics at val-calibrated thresholds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    train, val, test = splits["train"], splits["val"], splits[eval_split]
    best = None
    for c in grid:
        model = OneVsRestClassifier(LogisticRegression(C=c, solver="liblinear", max_iter=1000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(features[train], targets[train])
            val_scores = model.decision_function(features[val])
        auc = _macro_auc(targets[val], val_scores)
        if best is None or auc > best[0]:
            best = (auc, c, model, val_scores)
    _, c, model, val_scores = best
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test_scores = model.decision_function(features[test])
    thresholds = calibrate_thresholds(targets[val], sigmoid(val_scores))
    return compute_metrics(targets[test], sigmoid(test_scores), thresholds), c


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
        if modality == "text":
            docs, present = album_texts(records)
            blocks[modality] = _tfidf(docs, train)
            grid = TEXT_C_GRID
        else:
            matrix, present = dense_features(records, loaders[modality], num_workers, progress)
            blocks[modality] = sparse.csr_matrix(_standardise(matrix, present, train))
            grid = C_GRID
        result.metrics[modality], result.chosen_c[modality] = fit_lr(blocks[modality], targets, splits, eval_split, grid)
        result.seconds[modality] = round(time.monotonic() - clock, 1)
    if len(blocks) > 1:
        clock = time.monotonic()
        fused = sparse.hstack([blocks[m] for m in modalities]).tocsr()
        result.metrics["fused"], result.chosen_c["fused"] = fit_lr(fused, targets, splits, eval_split,
                                                                   C_GRID + TEXT_C_GRID[1:])
        result.seconds["fused"] = round(time.monotonic() - clock, 1)
    return result
