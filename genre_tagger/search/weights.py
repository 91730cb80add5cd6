"""Choosing the search vectors' two genre weights on val (``combine.py``): the text weight for
text-to-album queries, by where each query's own album ranks (``log_rank_scores``), and the
album weight for album-to-album queries ("more like this", audio and cover files), by
precision@10.

A query scores ``1 - log(rank) / log(gallery size)``: 1 at rank 1, 0 at the bottom, every
rank counted. Hits at 1, 5 and 10 (the metrics reported) turn a query's move from rank 11 to
rank 3 into noise or a jump; on val splits of 27 to 220 queries (six catalogs) the rank
score chose text weights whose test recall@10 was at or above the genre scores' on five,
where hits at 1/5/10 fell behind on two (docs/experiments.md).

A val split of a hundred albums tells weights apart only roughly, and the genre-score end
is what the tagger was trained for: each weight is chosen by the one-standard-error rule,
per query (or per album) and paired, toward the genre-score end. The weight that scores
best is found; then the largest weight whose shortfall from it is at most one standard
error of the paired per-item differences is taken. When the joint space adds nothing, the
genre-score end (``GENRE_END``) is taken; when it helps beyond noise, a smaller weight.

A gallery combined without genre part (album weight 0) cannot carry a text query's genre
part (``combine.query_weight``), so with a positive text weight the album weight is chosen
among the positive candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genre_tagger.search.combine import WEIGHTS, combine, protocol_vectors
from genre_tagger.search.data import JointData
from genre_tagger.search.joint import JointSpace
from genre_tagger.search.protocol import own_ranks, precision_shares


@dataclass
class GenreWeights:
    """The chosen weights: ``album`` (the gallery's, album-to-album) and ``text`` (text-to-album)."""

    album: float
    text: float


def log_rank_scores(ranks: np.ndarray, gallery_size: int) -> np.ndarray:
    """``[Q]``: ``1 - log(rank) / log(gallery_size)`` for 1-based own-album ``ranks`` (1 when
    the gallery holds one album)."""
    ranks = np.asarray(ranks, dtype=float)
    if gallery_size < 2:
        return np.ones_like(ranks)
    return 1.0 - np.log(ranks) / np.log(gallery_size)


def text_item_scores(vectors: dict, weight: float) -> np.ndarray:
    """``[Q]`` per-query rank scores (``log_rank_scores``) at text weight ``weight``."""
    gallery = combine(vectors["gallery_joint"], vectors["gallery_genre"], weight).numpy()
    queries = combine(vectors["query_joint"], vectors["query_genre"], weight).numpy()
    return log_rank_scores(own_ranks(queries, vectors["queries"], gallery), len(gallery))


def album_item_scores(vectors: dict, weight: float) -> np.ndarray:
    """``[A]`` per-album precision@10 shares at album weight ``weight``."""
    gallery = combine(vectors["gallery_joint"], vectors["gallery_genre"], weight).numpy()
    return precision_shares(gallery, vectors["genres"], 10)


def one_se_choice(weights: list[float], items: np.ndarray) -> int:
    """Index into ``weights`` (ascending) chosen from ``items [len(weights), n]``, each
    weight's per-item scores on the same items: the largest weight whose mean is at most
    one standard error (of the paired differences) below the best mean. No items: the
    largest weight."""
    items = np.asarray(items, dtype=float)
    if items.ndim != 2 or items.shape[1] == 0:
        return len(weights) - 1
    means = items.mean(axis=1)
    best = int(np.argmax(means))
    n = items.shape[1]
    for i in range(len(weights) - 1, -1, -1):
        diff = items[best] - items[i]
        se = diff.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
        if diff.mean() <= se + 1e-12:
            return i
    return best


def select_genre_weights(space: JointSpace, data: JointData, rows: np.ndarray,
                         weights=WEIGHTS) -> tuple[GenreWeights, list[dict]]:
    """The text and album weights of ``weights`` chosen on ``rows`` (val); returns them and each
    candidate's val scores (``choose_genre_weights``)."""
    return choose_genre_weights(protocol_vectors(space, data, rows), weights)


def choose_genre_weights(vectors: dict, weights=WEIGHTS) -> tuple[GenreWeights, list[dict]]:
    """The text and album weights of ``weights`` chosen by ``one_se_choice`` on ``vectors``
    (``combine.protocol_vectors``: gallery and queries, joint and genre parts apart)."""
    weights = sorted(float(w) for w in weights)
    text_items = np.stack([text_item_scores(vectors, w) for w in weights])
    album_items = np.stack([album_item_scores(vectors, w) for w in weights])
    text = weights[one_se_choice(weights, text_items)]
    allowed = [i for i, w in enumerate(weights) if w > 0 or text == 0]
    album = weights[allowed[one_se_choice([weights[i] for i in allowed], album_items[allowed])]]
    mean = lambda v: None if not v.size else round(float(v.mean()), 4)  # noqa: E731
    tried = [{"weight": w, "val_rank_score": mean(text_items[i]), "val_precision_at_10": mean(album_items[i])}
             for i, w in enumerate(weights)]
    return GenreWeights(album=album, text=text), tried
