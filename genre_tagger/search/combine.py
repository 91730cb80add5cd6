"""Search vectors that also carry what the supervised tagger knows.

The search vector of an album is the concatenation of its unit joint-space vector and ``w``
times its unit genre-score vector (the tagger's sigmoid scores through ``TaggerBundle.scores``,
from its present modalities; ``data.genre_vectors``), divided by ``sqrt(1 + w**2)`` so that it
stays unit length. Album-to-album inner products ("more like this", file queries) are then
``(joint cosine + w**2 * genre-score cosine) / (1 + w**2)``: ``w`` is the *album weight*.

Text queries (their genre scores from the text alone) have their own *text weight* ``t``: a
query is combined with ``query_weight(w, t) = t**2 / w``, so that against the gallery its
inner products rank albums by ``joint cosine + t**2 * genre-score cosine``, whatever ``w``.
Both are chosen on val (``weights.select_genre_weights``); ``GENRE_END``, the largest
candidate, is the genre-score cosine with the joint space as a tie-break. With one stored
weight (older checkpoints) ``t = w``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from genre_tagger.search.data import JointData
from genre_tagger.search.fit import JointSettings, album_vectors, selection_score
from genre_tagger.search.joint import JointSpace
from genre_tagger.search.protocol import search_metrics

GENRE_END = 1000.0  # the joint part weighs 1e-6 of the genre part: a tie-break (finite, so JSON-safe)
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, GENRE_END)


def combine(joint: torch.Tensor, genre: torch.Tensor, weight: float) -> torch.Tensor:
    """``[B, d]``, ``[B, L]`` (unit or zero rows) -> ``[B, d + L]`` (unit or zero rows)."""
    return torch.cat([joint, weight * genre], dim=-1) / math.sqrt(1.0 + weight ** 2)


def query_weight(album_weight: float, text_weight: float | None) -> float:
    """The weight a text query is combined with so that, against a gallery combined at
    ``album_weight``, it ranks by ``joint cosine + text_weight**2 * genre-score cosine``
    (None: ``album_weight``, one weight for both directions). A gallery without its genre
    part (``album_weight`` 0) only allows ``text_weight`` 0."""
    if text_weight is None:
        return float(album_weight)
    if text_weight == 0:
        return 0.0
    if album_weight <= 0:
        raise ValueError("a positive text genre weight needs a positive album genre weight")
    return float(text_weight) ** 2 / float(album_weight)


def _scores(scores: np.ndarray | None, rows: np.ndarray) -> torch.Tensor:
    """Genre-score vectors of ``rows``; ``[len(rows), 0]`` when there are none."""
    if scores is None:
        return torch.zeros(len(rows), 0)
    return torch.from_numpy(np.asarray(scores, np.float32)[rows])


@torch.no_grad()
def protocol_vectors(space: JointSpace, data: JointData, rows: np.ndarray) -> dict:
    """The search protocol's gallery and queries of ``rows`` (as ``fit.validate``), joint and genre parts apart."""
    space.eval()
    joint, known = album_vectors(space, data, rows)
    gallery = rows[np.flatnonzero(known)]
    queries = np.flatnonzero(np.asarray(data.text_present, bool)[gallery])
    text = torch.from_numpy(np.asarray(data.text[gallery[queries]], np.float32))
    query_joint = space.text(text) if len(queries) else torch.zeros(0, space.dim)
    return {"gallery_joint": torch.from_numpy(joint[known]), "gallery_genre": _scores(data.album_scores, gallery),
            "query_joint": query_joint, "query_genre": _scores(data.text_scores, gallery[queries]),
            "queries": queries, "genres": [data.genres[r] for r in gallery]}


def combined(vectors: dict, weight: float, text_weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(queries [Q, d + L], gallery [G, d + L])`` of ``protocol_vectors`` combined at album
    weight ``weight`` and text weight ``text_weight`` (None: ``weight``)."""
    gallery = combine(vectors["gallery_joint"], vectors["gallery_genre"], weight).numpy()
    queries = combine(vectors["query_joint"], vectors["query_genre"], query_weight(weight, text_weight)).numpy()
    return queries, gallery


def metrics_at(vectors: dict, weight: float, text_weight: float | None = None) -> dict[str, float]:
    """Search metrics of the combined vectors: album weight ``weight``, text weight ``text_weight``
    (None: ``weight``)."""
    queries, gallery = combined(vectors, weight, text_weight)
    return search_metrics(queries, vectors["queries"], gallery, vectors["genres"])


def best_weight_score(data: JointData, rows: np.ndarray, settings: JointSettings,
                      weights=WEIGHTS) -> Callable[[JointSpace], float]:
    """A candidate scorer for ``fit_joint_space``: the best selection score over ``weights`` on ``rows``."""
    def score(space: JointSpace) -> float:
        vectors = protocol_vectors(space, data, rows)
        scores = [selection_score(metrics_at(vectors, w), settings) for w in weights]
        return float(np.nanmax(scores)) if not np.all(np.isnan(scores)) else float("nan")
    return score
