"""The search protocol (docs/metrics.md), on vectors: text-to-album recall@k and median
rank, album-to-album precision@10. Works in row chunks so a large gallery stays cheap."""

from __future__ import annotations

from typing import Sequence

import numpy as np

METRIC_KEYS = ("text_to_album_recall_at_1", "text_to_album_recall_at_5", "text_to_album_recall_at_10",
               "text_to_album_median_rank", "album_to_album_precision_at_10", "n_queries", "n_albums")
CHUNK = 1024


def own_ranks(queries: np.ndarray, owner: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """1-based rank of each query's own album: ``queries [Q, d]``, ``owner [Q]`` rows of
    ``gallery [G, d]``. Ties count in the query's favour (rank = 1 + strictly better albums)."""
    ranks = np.zeros(len(queries), dtype=np.int64)
    for start in range(0, len(queries), CHUNK):
        scores = queries[start:start + CHUNK] @ gallery.T
        own = scores[np.arange(len(scores)), owner[start:start + CHUNK]]
        ranks[start:start + CHUNK] = 1 + (scores > own[:, None]).sum(axis=1)
    return ranks


def precision_shares(gallery: np.ndarray, genres: Sequence[Sequence[str] | None], k: int = 10) -> np.ndarray:
    """For each gallery album with genres, in gallery order, the share of its ``k`` nearest *other*
    gallery albums sharing at least one genre with it (albums without genres never share);
    empty when no album has genres or there is no other album. With fewer than ``k + 1``
    albums, every other album is a neighbour."""
    sets = [set(g) if g else set() for g in genres]
    rows = [i for i, s in enumerate(sets) if s]
    k = min(k, len(gallery) - 1)
    if not rows or k <= 0:
        return np.zeros(0)
    shares = []
    for start in range(0, len(rows), CHUNK):
        part = rows[start:start + CHUNK]
        scores = gallery[part] @ gallery.T
        scores[np.arange(len(part)), part] = -np.inf  # not its own neighbour
        nearest = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        for row, neighbours in zip(part, nearest):
            shares.append(np.mean([bool(sets[row] & sets[n]) for n in neighbours]))
    return np.asarray(shares, dtype=float)


def precision_at_k(gallery: np.ndarray, genres: Sequence[Sequence[str] | None], k: int = 10) -> float:
    """Mean of ``precision_shares``: album-to-album precision@k; NaN when it has no album to average."""
    shares = precision_shares(gallery, genres, k)
    return float(shares.mean()) if len(shares) else float("nan")


def search_metrics(queries: np.ndarray, owner: np.ndarray, gallery: np.ndarray,
                   genres: Sequence[Sequence[str] | None]) -> dict[str, float]:
    """The search metric keys from query vectors (``owner``: their album's gallery row), the gallery
    vectors and the gallery albums' genres. Vectors are compared by inner product."""
    ranks = own_ranks(queries, owner, gallery)
    has = len(ranks) > 0
    metrics = {f"text_to_album_recall_at_{k}": float((ranks <= k).mean()) if has else float("nan")
               for k in (1, 5, 10)}
    metrics["text_to_album_median_rank"] = float(np.median(ranks)) if has else float("nan")
    metrics["album_to_album_precision_at_10"] = precision_at_k(gallery, genres, 10)
    metrics["n_queries"] = int(len(queries))
    metrics["n_albums"] = int(len(gallery))
    return metrics


def paired_difference(values: np.ndarray, baseline: np.ndarray, resamples: int = 2000, seed: int = 0
                      ) -> dict[str, float]:
    """Mean of ``values [n]`` minus that of ``baseline [n]`` (the same items, e.g. per-album
    precision shares) with a 95 % paired bootstrap interval over items, and how many items
    are higher (``wins``) or lower (``losses``) than the baseline's."""
    values, baseline = np.asarray(values, float), np.asarray(baseline, float)
    if len(values) != len(baseline):
        raise ValueError("paired_difference: the two value lists must cover the same items")
    diff = values - baseline
    if not len(diff):
        return {"delta": float("nan"), "low": float("nan"), "high": float("nan"), "wins": 0, "losses": 0}
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"delta": float(diff.mean()), "low": float(low), "high": float(high),
            "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum())}


def paired_recall_difference(ranks: np.ndarray, baseline_ranks: np.ndarray, k: int = 10, resamples: int = 2000,
                             seed: int = 0) -> dict[str, float]:
    """Recall@k of ``ranks [Q]`` minus that of ``baseline_ranks [Q]`` (the same queries, 1-based
    ranks), with a 95 % paired bootstrap interval over queries, and how many queries only
    one of the two finds within ``k`` (``wins``: only the first, ``losses``: only the baseline)."""
    if len(ranks) != len(baseline_ranks):
        raise ValueError("paired_recall_difference: the two rank lists must cover the same queries")
    return paired_difference(np.asarray(ranks) <= k, np.asarray(baseline_ranks) <= k, resamples, seed)


def paired_rank_sign_test(ranks: np.ndarray, baseline_ranks: np.ndarray) -> dict[str, float]:
    """How many of the same queries rank their own album higher (``better``) or lower
    (``worse``) than the baseline does, and the two-sided exact sign-test p-value over the
    untied ones (uses the whole ranking, not only the top k)."""
    ranks, baseline_ranks = np.asarray(ranks), np.asarray(baseline_ranks)
    if len(ranks) != len(baseline_ranks):
        raise ValueError("paired_rank_sign_test: the two rank lists must cover the same queries")
    from scipy.stats import binomtest  # lazy: only benchmarks call this

    better, worse = int((ranks < baseline_ranks).sum()), int((ranks > baseline_ranks).sum())
    n = better + worse
    p = binomtest(better, n, 0.5).pvalue if n else 1.0
    return {"better": better, "worse": worse, "tied": int(len(ranks) - n), "p_value": float(p)}
