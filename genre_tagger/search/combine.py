"""Search vectors that also carry what the supervised tagger knows.

The final search vector of an album or a text is the concatenation of its unit joint-space
vector and ``w`` times its unit genre-score vector (the tagger's sigmoid scores through
``TaggerBundle.scores``: for an album from its present modalities, for a text query from the
text alone; ``data.genre_vectors``), divided by ``sqrt(1 + w**2)`` so that it stays unit
length. Inner products are then ``(joint cosine + w**2 * genre-score cosine) / (1 + w**2)``.
``w`` is chosen on the val split by the search protocol, with ``w = 0`` (the joint space alone)
among the candidates, together with the joint space's candidate (``best_weight_score``):
choosing the candidate for the joint space alone and then ``w`` would favour ``w = 0``, whose
val score that choice inflated.
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

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def combine(joint: torch.Tensor, genre: torch.Tensor, weight: float) -> torch.Tensor:
    """``[B, d]``, ``[B, L]`` (unit or zero rows) -> ``[B, d + L]`` (unit or zero rows)."""
    return torch.cat([joint, weight * genre], dim=-1) / math.sqrt(1.0 + weight ** 2)


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


def metrics_at(vectors: dict, weight: float) -> dict[str, float]:
    """Search metrics of the combined vectors with genre weight ``weight``."""
    gallery = combine(vectors["gallery_joint"], vectors["gallery_genre"], weight).numpy()
    queries = combine(vectors["query_joint"], vectors["query_genre"], weight).numpy()
    return search_metrics(queries, vectors["queries"], gallery, vectors["genres"])


def best_weight_score(data: JointData, rows: np.ndarray, settings: JointSettings,
                      weights=WEIGHTS) -> Callable[[JointSpace], float]:
    """A candidate scorer for ``fit_joint_space``: the best selection score over ``weights`` on ``rows``."""
    def score(space: JointSpace) -> float:
        vectors = protocol_vectors(space, data, rows)
        scores = [selection_score(metrics_at(vectors, w), settings) for w in weights]
        return float(np.nanmax(scores)) if not np.all(np.isnan(scores)) else float("nan")
    return score


def select_genre_weight(space: JointSpace, data: JointData, rows: np.ndarray, settings: JointSettings,
                        weights=WEIGHTS) -> tuple[float, dict[str, float], list]:
    """The weight of ``weights`` that scores best on ``rows`` (val) by ``fit.selection_score``
    (ties: the smaller weight); returns it, its metrics and the score of each candidate."""
    vectors = protocol_vectors(space, data, rows)
    best, best_score, best_metrics, tried = 0.0, -np.inf, None, []
    for weight in weights:
        metrics = metrics_at(vectors, weight)
        score = selection_score(metrics, settings)
        tried.append({"weight": weight, "val_score": None if np.isnan(score) else round(float(score), 4)})
        if best_metrics is None or (not np.isnan(score) and score > best_score):
            best, best_score, best_metrics = float(weight), score, metrics
    return best, best_metrics, tried
