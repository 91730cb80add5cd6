"""Multi-label metrics (docs/metrics.md) and per-label threshold calibration.

Conventions: ``targets`` is ``[N, L]`` in {0, 1}, ``scores`` is ``[N, L]`` probabilities
(or any monotone score), ``thresholds`` is ``[L]``. Macro averages run over the labels
that have at least one positive and one negative album in the evaluated set.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

METRIC_KEYS = (
    "macro_roc_auc", "micro_roc_auc", "macro_pr_auc", "micro_pr_auc",
    "micro_f1", "macro_f1", "coverage_at_1", "n_albums", "n_labels_evaluated",
)


def evaluable_labels(targets: np.ndarray) -> np.ndarray:
    """Indices of labels with at least one positive and one negative album."""
    positives = targets.sum(axis=0)
    return np.flatnonzero((positives > 0) & (positives < targets.shape[0]))


def macro_roc_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    """Macro ROC-AUC ``targets [N, L]``, ``scores [N, L]`` over the evaluable labels; NaN if none.

    The one implementation: training's model selection, evaluation and the ablation call it;
    bootstraps use ``resampled_macro_roc_auc``, the same value without sorting each resample.
    """
    labels = evaluable_labels(np.asarray(targets))
    if len(labels) == 0:
        return float("nan")
    return float(roc_auc_score(np.asarray(targets)[:, labels], np.asarray(scores)[:, labels], average="macro"))


def ranked_for_resampling(targets: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """What ``resampled_macro_roc_auc`` needs, computed once: per label, the albums in score order
    ``[N, L]``, their targets in that order, and each album's tie group's first and last
    position in that order (tied scores share one group)."""
    targets, scores = np.asarray(targets, dtype=float), np.asarray(scores)
    order = np.argsort(scores, axis=0, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=0)
    n = len(ordered)
    positions = np.broadcast_to(np.arange(n)[:, None], ordered.shape)
    starts = np.ones(ordered.shape, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    first = np.maximum.accumulate(np.where(starts, positions, 0), axis=0)
    ends = np.ones(ordered.shape, dtype=bool)
    ends[:-1] = starts[1:]
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, positions, n - 1), axis=0), axis=0), axis=0)
    return {"order": order, "targets": np.take_along_axis(targets, order, axis=0), "first": first, "last": last}


def resampled_macro_roc_auc(ranked: dict[str, np.ndarray], counts: np.ndarray) -> float:
    """``macro_roc_auc`` of the albums taken ``counts [N]`` times each (a bootstrap resample),
    from ``ranked_for_resampling``: the same value, ties counted half, without sorting again."""
    weights = np.asarray(counts, dtype=float)[ranked["order"]]
    positive, negative = weights * ranked["targets"], weights * (1 - ranked["targets"])
    below = np.vstack([np.zeros((1, negative.shape[1])), np.cumsum(negative, axis=0)])  # negatives before each position
    strictly_below = np.take_along_axis(below, ranked["first"], axis=0)
    tied = np.take_along_axis(below, ranked["last"] + 1, axis=0) - strictly_below
    n_pos, n_neg = positive.sum(axis=0), negative.sum(axis=0)
    evaluable = (n_pos > 0) & (n_neg > 0)
    if not evaluable.any():
        return float("nan")
    wins = (positive * (strictly_below + 0.5 * tied)).sum(axis=0)
    return float(np.mean(wins[evaluable] / (n_pos[evaluable] * n_neg[evaluable])))


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def f1_scores(targets: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-label F1 ``[L]`` and micro F1 of 0/1 predictions ``[N, L]``."""
    targets = targets.astype(bool)
    predicted = predicted.astype(bool)
    tp = (targets & predicted).sum(axis=0).astype(float)
    fp = (~targets & predicted).sum(axis=0).astype(float)
    fn = (targets & ~predicted).sum(axis=0).astype(float)
    micro = float(_f1(np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()]))[0])
    return _f1(tp, fp, fn), micro


def coverage_at_1(scores: np.ndarray) -> float:
    """Share of the label vocabulary that is the top-1 prediction of some album."""
    if scores.size == 0:
        return 0.0
    return float(len(np.unique(scores.argmax(axis=1))) / scores.shape[1])


def predicted_labels(scores: np.ndarray, thresholds: np.ndarray, taxonomy=None) -> np.ndarray:
    """Boolean ``[N, L]``: labels over their thresholds (with a ``taxonomy``, plus their
    ancestors, as `tag` records list them)."""
    return taxonomy.decide(scores, thresholds) if taxonomy else np.asarray(scores) >= np.asarray(thresholds)[None, :]


def compute_metrics(targets: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, taxonomy=None) -> dict:
    """All tagging metrics (docs/metrics.md) as a flat dict of floats (counts as ints).
    With a ``taxonomy`` (``genre_tagger.taxonomy.Taxonomy``), F1 counts a predicted genre's
    ancestors as predicted too."""
    targets = np.asarray(targets, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    labels = evaluable_labels(targets)
    result = {key: float("nan") for key in METRIC_KEYS}
    result.update(n_albums=int(targets.shape[0]), n_labels_evaluated=int(len(labels)))
    if targets.shape[0] == 0:
        return result
    per_label_f1, micro_f1 = f1_scores(targets, predicted_labels(scores, thresholds, taxonomy))
    result["micro_f1"] = micro_f1
    result["coverage_at_1"] = coverage_at_1(scores)
    if len(labels) == 0:
        return result
    sub_t, sub_s = targets[:, labels], scores[:, labels]
    result["macro_roc_auc"] = macro_roc_auc(targets, scores)
    result["micro_roc_auc"] = float(roc_auc_score(sub_t, sub_s, average="micro"))
    result["macro_pr_auc"] = float(average_precision_score(sub_t, sub_s, average="macro"))
    result["micro_pr_auc"] = float(average_precision_score(sub_t, sub_s, average="micro"))
    result["macro_f1"] = float(per_label_f1[labels].mean())
    return result


def taxonomy_metrics(targets: np.ndarray, scores: np.ndarray, raw_scores: np.ndarray, thresholds: np.ndarray,
                     taxonomy) -> dict:
    """The taxonomy's metrics: ``inconsistent_albums`` (share of albums whose predicted genres,
    as `tag` lists them, include a genre without one of its ancestors) and
    ``inconsistent_albums_unconstrained`` (the same of ``raw_scores`` over the thresholds,
    without the constraint or the ancestors added); ``macro_roc_auc_by_level`` (``{depth:
    macro ROC-AUC of that level's labels}``, depth 0 the top) and ``hierarchical_f1`` (micro
    F1 with every genre's ancestors added on both sides)."""
    targets = np.asarray(targets, dtype=np.int64)
    predicted = predicted_labels(scores, thresholds, taxonomy)
    raw_predicted = np.asarray(raw_scores) >= np.asarray(thresholds)[None, :]
    n = max(targets.shape[0], 1)
    depths = taxonomy.depths()
    by_level = {}
    for level in sorted(set(depths.tolist())):
        columns = np.flatnonzero(depths == level)
        by_level[str(level)] = macro_roc_auc(targets[:, columns], np.asarray(scores)[:, columns])
    _, hierarchical = f1_scores(taxonomy.close(targets.astype(bool)), taxonomy.close(predicted))
    return {"inconsistent_albums": float(taxonomy.inconsistent(predicted).sum() / n),
            "inconsistent_albums_unconstrained": float(taxonomy.inconsistent(raw_predicted).sum() / n),
            "macro_roc_auc_by_level": by_level, "hierarchical_f1": hierarchical,
            "taxonomy_links": len(taxonomy.links)}


def per_label_rows(
    targets: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, label_names: list[str]
) -> list[dict]:
    """One row per label: support, ROC-AUC / PR-AUC (NaN when undefined), F1, threshold."""
    targets = np.asarray(targets, dtype=np.int64)
    per_label_f1, _ = f1_scores(targets, scores >= thresholds[None, :])
    evaluable = set(evaluable_labels(targets).tolist())
    rows = []
    for index, name in enumerate(label_names):
        column_t, column_s = targets[:, index], scores[:, index]
        ok = index in evaluable
        rows.append({
            "label": name,
            "positives": int(column_t.sum()),
            "roc_auc": float(roc_auc_score(column_t, column_s)) if ok else float("nan"),
            "pr_auc": float(average_precision_score(column_t, column_s)) if ok else float("nan"),
            "f1": float(per_label_f1[index]),
            "threshold": float(thresholds[index]),
            "predicted_positive": int((column_s >= thresholds[index]).sum()),
        })
    return rows


def best_f1_threshold(column_targets: np.ndarray, column_scores: np.ndarray) -> tuple[float, float]:
    """Threshold maximising F1 for one label, and that F1.

    Candidates are midpoints between consecutive distinct scores, so the threshold sits
    between albums rather than exactly on one.
    """
    order = np.argsort(-column_scores, kind="stable")
    sorted_scores = column_scores[order]
    sorted_targets = column_targets[order].astype(float)
    tp = np.cumsum(sorted_targets)
    predicted = np.arange(1, len(sorted_scores) + 1)
    f1 = 2 * tp / (predicted + sorted_targets.sum())
    # Only cut where the next score differs, so ties fall on one side together.
    cut_ok = np.append(sorted_scores[1:] < sorted_scores[:-1], True)
    f1 = np.where(cut_ok, f1, -1.0)
    best = int(np.argmax(f1))
    below = sorted_scores[best + 1] if best + 1 < len(sorted_scores) else 0.0
    return float((sorted_scores[best] + below) / 2), float(f1[best])


def calibrate_thresholds(
    targets: np.ndarray, scores: np.ndarray, min_positives: int = 3
) -> np.ndarray:
    """Per-label thresholds ``[L]`` calibrated on validation data.

    Labels with at least ``min_positives`` positives get their own best-F1 threshold;
    rarer labels (a best-F1 cut on one or two albums is noise) share one global
    threshold: the one maximising micro F1 over all labels.
    """
    targets = np.asarray(targets, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    global_threshold, _ = best_f1_threshold(targets.ravel(), scores.ravel()) if targets.size else (0.5, 0)
    thresholds = np.full(targets.shape[1], global_threshold, dtype=np.float64)
    for index in np.flatnonzero(targets.sum(axis=0) >= min_positives):
        thresholds[index], _ = best_f1_threshold(targets[:, index], scores[:, index])
    return thresholds
