"""Full-ranking metrics for next-item prediction: hit rate@k, NDCG@k, MRR.

Every album is ranked except those already in the user's history (the target itself
stays rankable, in case it is a repeat). Ties count half (the expected rank under a
random tie-break), so a scorer that gives everything the same score sits at chance.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Scorer = Callable[[list[list[int]]], np.ndarray]  # histories -> scores [B, N]


def target_ranks(scores: np.ndarray, targets: np.ndarray, histories: Sequence[Sequence[int]]) -> np.ndarray:
    """1-based expected ranks ``[B]`` of ``targets [B]`` in ``scores [B, N]``, history excluded."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets]
    for row, history in enumerate(histories):
        seen = [item for item in history if item != targets[row]]
        scores[row, seen] = -np.inf
    greater = (scores > target_scores[:, None]).sum(axis=1)
    ties = (scores == target_scores[:, None]).sum(axis=1) - 1
    return 1.0 + greater + ties / 2.0


def ranking_metrics(ranks: np.ndarray, k: int = 10) -> dict[str, float]:
    """``hit_rate_at_k``, ``ndcg_at_k``, ``mrr`` of 1-based ranks (empty: zeros)."""
    if len(ranks) == 0:
        return {f"hit_rate_at_{k}": 0.0, f"ndcg_at_{k}": 0.0, "mrr": 0.0}
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks <= k
    return {
        f"hit_rate_at_{k}": float(hit.mean()),
        f"ndcg_at_{k}": float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean()),
        "mrr": float((1.0 / ranks).mean()),
    }


def score_ranks(scorer: Scorer, histories: list[list[int]], targets: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Ranks of every target under ``scorer``, a chunk of users at a time (memory stays flat)."""
    ranks = [target_ranks(scorer(histories[s:s + chunk]), targets[s:s + chunk], histories[s:s + chunk])
             for s in range(0, len(targets), chunk)]
    return np.concatenate(ranks) if ranks else np.zeros(0)


def evaluate_scorer(scorer: Scorer, histories: list[list[int]], targets: np.ndarray, cold: np.ndarray,
                    k: int = 10) -> dict[str, float]:
    """The recommender metric keys (docs/metrics.md) for one scorer; ``cold [B]`` marks cold-start targets."""
    ranks = score_ranks(scorer, histories, targets)
    metrics: dict[str, float] = dict(ranking_metrics(ranks, k))
    metrics["n_users"] = int(len(ranks))
    cold_metrics = ranking_metrics(ranks[cold], k)
    metrics[f"cold_start_hit_rate_at_{k}"] = cold_metrics[f"hit_rate_at_{k}"]
    metrics[f"cold_start_ndcg_at_{k}"] = cold_metrics[f"ndcg_at_{k}"]
    metrics["n_cold_start"] = int(cold.sum())
    # the rest: targets someone played in training (what id-only models and item-kNN can find)
    metrics[f"warm_hit_rate_at_{k}"] = ranking_metrics(ranks[~cold], k)[f"hit_rate_at_{k}"]
    return metrics
