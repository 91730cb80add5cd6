"""`genre-tagger evaluate-search` (docs/metrics.md) and the baselines the benchmark compares
against, all through the same protocol code (``protocol.search_metrics``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genre_tagger.data.manifest import read_manifest
from genre_tagger.errors import UserInputError
from genre_tagger.search.combine import metrics_at, protocol_vectors
from genre_tagger.search.data import JointData
from genre_tagger.search.model import load_search_model
from genre_tagger.search.protocol import METRIC_KEYS, search_metrics


def protocol_rows(data: JointData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The search protocol's gallery (albums of ``rows`` with some album-side modality) and, within it, the query
    positions (gallery albums with texts)."""
    known = np.zeros(len(rows), bool)
    for present in data.album_present.values():
        known |= np.asarray(present, bool)[rows]
    gallery = rows[known]
    queries = np.flatnonzero(np.asarray(data.text_present, bool)[gallery])
    return gallery, queries


def random_baseline(data: JointData, rows: np.ndarray, dim: int = 128, seed: int = 0) -> dict[str, float]:
    """Random unit vectors for the gallery and the queries."""
    gallery, queries = protocol_rows(data, rows)
    rng = np.random.default_rng(seed)
    unit = lambda n: (lambda v: v / np.linalg.norm(v, axis=1, keepdims=True))(rng.normal(size=(n, dim)))  # noqa: E731
    return search_metrics(unit(len(queries)), queries, unit(len(gallery)), [data.genres[r] for r in gallery])


def genre_score_vectors(data: JointData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """The genre-score baseline's vectors: ``(queries [Q, L], owner [Q], gallery [G, L], genres)``,
    the tagger's unit scores (``data.album_scores``: albums from their album side,
    ``data.text_scores``: text queries from the text alone)."""
    gallery, queries = protocol_rows(data, rows)
    return (data.text_scores[gallery[queries]], queries, data.album_scores[gallery],
            [data.genres[r] for r in gallery])


def genre_score_baseline(data: JointData, rows: np.ndarray) -> dict[str, float]:
    """Cosine between the tagger's predicted genre scores: albums scored from their album side,
    text queries from the text alone (what a user would try first)."""
    return search_metrics(*genre_score_vectors(data, rows))


def evaluate_search(checkpoint: str | Path, manifest: str | Path, output: str | Path, split: str | None = "test",
                    batch_size: int = 32, num_workers: int = 2, device: str = "auto",
                    progress: bool = True) -> dict[str, float]:
    """Writes ``output/metrics.json`` with exactly the search metric keys; returns them."""
    model = load_search_model(checkpoint)
    records, _ = read_manifest(manifest)
    records = [r for r in records if split is None or r.split == split]
    if not records:
        raise UserInputError(f"{manifest}: no album has split={split}")
    features, view = model.embed(records, model.cache_dir(manifest), batch_size=batch_size, num_workers=num_workers,
                                 device=device, progress=progress)
    data = model.joint_data(features, view, [r.genres for r in records])
    metrics = metrics_at(protocol_vectors(model.space, data, data.splits["eval"]), model.genre_weight,
                         model.text_genre_weight)
    metrics = {key: metrics[key] for key in METRIC_KEYS}
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics
