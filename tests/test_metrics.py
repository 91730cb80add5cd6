import json

import numpy as np
import pytest

from genre_tagger.metrics import (
    METRIC_KEYS, best_f1_threshold, calibrate_thresholds, compute_metrics, coverage_at_1, per_label_rows,
)


def test_perfect_scores_give_auc_one_and_macro_skips_constant_labels():
    targets = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 1], [0, 1, 1]])
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.5], [0.7, 0.3, 0.5], [0.1, 0.6, 0.5]])
    metrics = compute_metrics(targets, scores, np.full(3, 0.5))
    assert set(METRIC_KEYS) <= set(metrics)
    assert metrics["macro_roc_auc"] == pytest.approx(1.0)
    assert metrics["n_labels_evaluated"] == 2  # label 2 is positive everywhere: left out
    assert metrics["n_albums"] == 4
    json.dumps(metrics)


def test_inverted_scores_give_auc_zero():
    targets = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    metrics = compute_metrics(targets, 1 - targets.astype(float), np.full(2, 0.5))
    assert metrics["macro_roc_auc"] == pytest.approx(0.0)
    assert metrics["micro_f1"] == pytest.approx(0.0)


def test_coverage_counts_distinct_top1_labels():
    scores = np.array([[0.9, 0.1, 0.0, 0.0], [0.8, 0.2, 0.0, 0.0], [0.1, 0.9, 0.0, 0.0]])
    assert coverage_at_1(scores) == pytest.approx(2 / 4)


def test_best_f1_threshold_separates_classes():
    targets = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    threshold, f1 = best_f1_threshold(targets, scores)
    assert 0.3 < threshold < 0.7
    assert f1 == pytest.approx(1.0)


def test_rare_labels_fall_back_to_the_global_threshold():
    rng = np.random.default_rng(0)
    targets = (rng.random((200, 3)) < [0.3, 0.4, 0.0]).astype(int)
    targets[:2, 2] = 1  # two positives: too few for a per-label cut
    scores = np.clip(targets * 0.5 + rng.random((200, 3)) * 0.6, 0, 1)
    thresholds = calibrate_thresholds(targets, scores, min_positives=3)
    global_threshold, _ = best_f1_threshold(targets.ravel(), scores.ravel())
    assert thresholds[2] == pytest.approx(global_threshold)
    assert thresholds[0] != pytest.approx(global_threshold)


def test_per_label_rows_report_nan_auc_for_undefined_labels():
    targets = np.array([[1, 0], [0, 0]])
    rows = per_label_rows(targets, np.array([[0.9, 0.2], [0.1, 0.3]]), np.full(2, 0.5), ["A", "B"])
    assert rows[0]["roc_auc"] == pytest.approx(1.0)
    assert np.isnan(rows[1]["roc_auc"]) and rows[1]["positives"] == 0


def test_resampled_macro_roc_auc_equals_scoring_the_resample_ties_included():
    """The bootstraps' fast form gives what ``macro_roc_auc`` gives on the resampled rows."""
    from genre_tagger.metrics import macro_roc_auc, ranked_for_resampling, resampled_macro_roc_auc

    rng = np.random.default_rng(0)
    targets = (rng.random((40, 7)) < 0.3).astype(float)
    scores = np.round(rng.random((40, 7)), 1)  # many tied scores
    ranked = ranked_for_resampling(targets, scores)
    for _ in range(20):
        rows = rng.integers(0, 40, 40)
        fast = resampled_macro_roc_auc(ranked, np.bincount(rows, minlength=40))
        assert fast == pytest.approx(macro_roc_auc(targets[rows], scores[rows]), abs=1e-12)
    assert resampled_macro_roc_auc(ranked, np.ones(40)) == pytest.approx(macro_roc_auc(targets, scores), abs=1e-12)
    assert np.isnan(resampled_macro_roc_auc(ranked_for_resampling(np.zeros((4, 2)), scores[:4, :2]), np.ones(4)))
