"""Leave-last-out split, full-ranking metrics on hand-built ranks, the simple baselines."""

import math

import numpy as np
import pytest

from genre_tagger.recommend.baselines import ItemKNN, Popularity
from genre_tagger.recommend.metrics import evaluate_scorer, ranking_metrics, target_ranks
from genre_tagger.recommend.splits import leave_last_out


def test_leave_last_out():
    index = {f"a{i}": i for i in range(6)}
    split = leave_last_out({"u2": ["a5", "a4"], "u1": ["a0", "a1", "a2", "a3", "a4"], "u3": ["a1", "a2", "a3"]},
                           index)
    assert split.users == ["u1", "u3"]
    assert split.train == [[0, 1, 2], [1]]
    assert split.val_target.tolist() == [3, 2] and split.test_target.tolist() == [4, 3]
    assert split.extra_train == [[5, 4]]                    # too short to evaluate, still training data
    assert split.test_inputs() == [[0, 1, 2, 3], [1, 2]]
    assert split.seen_in_training(6).tolist() == [True, True, True, False, True, True]


def test_ranks_exclude_history_and_split_ties():
    scores = np.array([[0.9, 0.1, 0.5, 0.3, 0.5],
                       [0.9, 0.1, 0.5, 0.3, 0.5],
                       [1.0, 1.0, 1.0, 1.0, 1.0]])
    ranks = target_ranks(scores, np.array([2, 3, 4]), [[0], [], [1]])
    # row 0: a0 excluded; a4 ties with the target (counts half) -> 1.5
    # row 1: nothing excluded: a0, a2, a4 above -> 4;  row 2: all tied, 3 others rankable -> 2.5
    assert ranks.tolist() == [1.5, 4.0, 2.5]


def test_metrics_on_known_ranks():
    metrics = ranking_metrics(np.array([1.0, 3.0, 20.0]), k=10)
    assert metrics["hit_rate_at_10"] == pytest.approx(2 / 3)
    assert metrics["ndcg_at_10"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert metrics["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 20) / 3)
    assert ranking_metrics(np.zeros(0))["hit_rate_at_10"] == 0.0


def test_evaluate_scorer_reports_cold_subset():
    def scorer(histories):
        return np.tile(np.arange(30, 0, -1, dtype=float), (len(histories), 1))   # item 0 best

    metrics = evaluate_scorer(scorer, [[0], [0], [5]], np.array([1, 25, 0]), np.array([False, True, False]))
    assert metrics["n_users"] == 3 and metrics["n_cold_start"] == 1
    assert metrics["hit_rate_at_10"] == pytest.approx(2 / 3)      # ranks 1, 25, 1
    assert metrics["cold_start_hit_rate_at_10"] == 0.0 and metrics["warm_hit_rate_at_10"] == 1.0


def test_baselines():
    sequences = [[0, 1], [0, 1], [0, 2], [3, 4]]
    popularity = Popularity(5).fit(sequences)
    assert popularity([[9]])[0].tolist() == [3, 2, 1, 1, 1]
    knn = ItemKNN(5, neighbours=None).fit(sequences)
    scores = knn([[1]])[0]
    assert scores[0] > scores[2] and scores[2] == 0 and scores[4] == 0       # 1 co-occurs with 0 only
    assert knn([[3]])[0].argmax() == 4
