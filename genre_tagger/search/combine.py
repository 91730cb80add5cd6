"""Search vectors that also carry what the supervised tagger knows.

The final search vector of an album or a text is the concatenation of its unit joint-space
vector and ``w`` times its unit genre-score vector (the tagger's sigmoid scores: for an
album from its present modalities, for a text query from the text alone), divided by
``sqrt(1 + w**2)`` so that it stays unit length. Inner products are then
``(joint cosine + w**2 * genre-score cosine) / (1 + w**2)``. ``w`` is chosen on the val
split by the §7 protocol, with ``w = 0`` (the joint space alone) among the candidates,
together with the training epoch (``best_weight_score``): choosing the epoch for the joint
space alone and then ``w`` would favour ``w = 0``, whose val score the epoch choice inflated.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from genre_tagger.search.fit import ALBUM_SIDE, JointData, JointSettings, album_vectors, selection_score
from genre_tagger.search.joint import JointSpace
from genre_tagger.search.protocol import search_metrics
from genre_tagger.search.text_view import tagger_inputs

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


@torch.no_grad()
def genre_vectors(tagger: torch.nn.Module, embeddings: dict[str, torch.Tensor],
                  present: dict[str, torch.Tensor]) -> torch.Tensor:
    """``({m: [B, D_m]}, {m: [B]}) -> [B, L]``: unit sigmoid genre scores from the given
    modalities the tagger knows; all zeros for a row with none of them present."""
    used = [m for m in embeddings if m in tagger.modalities]
    if not used:
        raise ValueError("genre_vectors(): none of the tagger's modalities were given")
    tagger.eval()  # no modality dropout
    masks = {m: present[m].bool() for m in used}
    inputs = tagger_inputs(tagger, {m: embeddings[m].float() for m in used})
    scores = torch.sigmoid(tagger.logits_from_embeddings(inputs, masks))
    known = torch.stack([masks[m] for m in used], dim=1).any(dim=1, keepdim=True)
    return F.normalize(scores, dim=-1) * known


def combine(joint: torch.Tensor, genre: torch.Tensor, weight: float) -> torch.Tensor:
    """``[B, d]``, ``[B, L]`` (unit or zero rows) -> ``[B, d + L]`` (unit or zero rows)."""
    return torch.cat([joint, weight * genre], dim=-1) / math.sqrt(1.0 + weight ** 2)


@torch.no_grad()
def protocol_vectors(space: JointSpace, tagger: torch.nn.Module, data: JointData, rows: np.ndarray) -> dict:
    """The §7 gallery and queries of ``rows`` (as ``fit.validate``), joint and genre parts apart."""
    space.eval()
    joint, known = album_vectors(space, data, rows)
    keep = np.flatnonzero(known)
    side = [m for m in ALBUM_SIDE if m in space.modalities and m in data.album]
    emb = {m: torch.from_numpy(np.asarray(data.album[m][rows][keep], np.float32)) for m in side}
    present = {m: torch.from_numpy(np.asarray(data.album_present[m][rows][keep], bool)) for m in side}
    queries = np.flatnonzero(np.asarray(data.text_present, bool)[rows][keep])
    text = torch.from_numpy(np.asarray(data.text[rows][keep][queries], np.float32))
    gallery_genre = genre_vectors(tagger, emb, present)
    query_joint = torch.zeros(len(queries), space.dim)
    query_genre = torch.zeros(len(queries), gallery_genre.shape[1])
    if len(queries) and "text" in space.modalities:
        query_joint = space.text(text)
    if len(queries) and "text" in tagger.modalities:
        query_genre = genre_vectors(tagger, {"text": text}, {"text": torch.ones(len(queries), dtype=torch.bool)})
    return {"gallery_joint": torch.from_numpy(joint[keep]), "gallery_genre": gallery_genre,
            "query_joint": query_joint, "query_genre": query_genre, "queries": queries,
            "genres": [data.genres[r] for r in rows[keep]]}


def metrics_at(vectors: dict, weight: float) -> dict[str, float]:
    """§7 metrics of the combined vectors with genre weight ``weight``."""
    gallery = combine(vectors["gallery_joint"], vectors["gallery_genre"], weight).numpy()
    queries = combine(vectors["query_joint"], vectors["query_genre"], weight).numpy()
    return search_metrics(queries, vectors["queries"], gallery, vectors["genres"])


def best_weight_score(tagger: torch.nn.Module, data: JointData, rows: np.ndarray, settings: JointSettings,
                      weights=WEIGHTS) -> Callable[[JointSpace], float]:
    """An epoch scorer for ``fit_joint_space``: the best selection score over ``weights`` on ``rows``."""
    def score(space: JointSpace) -> float:
        vectors = protocol_vectors(space, tagger, data, rows)
        scores = [selection_score(metrics_at(vectors, w), settings) for w in weights]
        return float(np.nanmax(scores)) if not np.all(np.isnan(scores)) else float("nan")
    return score


def select_genre_weight(space: JointSpace, tagger: torch.nn.Module, data: JointData, rows: np.ndarray,
                        settings: JointSettings, weights=WEIGHTS) -> tuple[float, dict[str, float], list]:
    """The weight of ``weights`` that scores best on ``rows`` (val) by ``fit.selection_score``
    (ties: the smaller weight); returns it, its metrics and the score of each candidate."""
    vectors = protocol_vectors(space, tagger, data, rows)
    best, best_score, best_metrics, tried = 0.0, -np.inf, None, []
    for weight in weights:
        metrics = metrics_at(vectors, weight)
        score = selection_score(metrics, settings)
        tried.append({"weight": weight, "val_score": None if np.isnan(score) else round(float(score), 4)})
        if best_metrics is None or (not np.isnan(score) and score > best_score):
            best, best_score, best_metrics = float(weight), score, metrics
    return best, best_metrics, tried
