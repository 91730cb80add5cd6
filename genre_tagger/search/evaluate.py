"""`genre-tagger evaluate-search` (CONTRACT §7) and the baselines the benchmark compares
against, all through the same protocol code (``protocol.search_metrics``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from genre_tagger.bundle import TaggerBundle
from genre_tagger.data.manifest import read_manifest
from genre_tagger.errors import UserInputError
from genre_tagger.features import ModalityFeatures
from genre_tagger.search.features import DescriptionEmbeddings, default_cache_dir
from genre_tagger.search.combine import metrics_at, protocol_vectors
from genre_tagger.search.fit import ALBUM_SIDE, JointData
from genre_tagger.search.hook import load_search_model
from genre_tagger.search.protocol import METRIC_KEYS, search_metrics
from genre_tagger.search.text_view import tagger_inputs


def protocol_rows(data: JointData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """§7 gallery (albums of ``rows`` with audio or cover) and, within it, the query positions
    (gallery albums with texts)."""
    known = np.zeros(len(rows), bool)
    for m in ALBUM_SIDE:
        if m in data.album_present:
            known |= np.asarray(data.album_present[m], bool)[rows]
    gallery = rows[known]
    queries = np.flatnonzero(np.asarray(data.text_present, bool)[gallery])
    return gallery, queries


def data_from_features(features: dict[str, ModalityFeatures], genres: list, n: int) -> JointData:
    """A ``JointData`` of evaluation albums (no descriptions, one split ``eval`` of all rows)."""
    album = {m: features[m].embeddings for m in ALBUM_SIDE if m in features}
    present = {m: features[m].present for m in ALBUM_SIDE if m in features}
    text = features.get("text")
    text_emb = text.embeddings if text is not None else np.zeros((n, 1), np.float32)
    text_present = text.present if text is not None else np.zeros(n, bool)
    return JointData(album, present, text_emb, text_present, DescriptionEmbeddings.empty(text_emb.shape[1]),
                     genres, {"eval": np.arange(n)})


def random_baseline(data: JointData, rows: np.ndarray, dim: int = 128, seed: int = 0) -> dict[str, float]:
    """Random unit vectors for the gallery and the queries."""
    gallery, queries = protocol_rows(data, rows)
    rng = np.random.default_rng(seed)
    unit = lambda n: (lambda v: v / np.linalg.norm(v, axis=1, keepdims=True))(rng.normal(size=(n, dim)))  # noqa: E731
    return search_metrics(unit(len(queries)), queries, unit(len(gallery)), [data.genres[r] for r in gallery])


@torch.no_grad()
def genre_score_vectors(bundle: TaggerBundle, data: JointData, rows: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """The genre-score baseline's vectors: ``(queries [Q, L], owner [Q], gallery [G, L], genres)``,
    unit sigmoid scores of the tagger, albums from audio+cover, text queries from the text alone."""
    model = bundle.model.eval()
    gallery, queries = protocol_rows(data, rows)

    def scores(modalities: list[str], picked: np.ndarray) -> np.ndarray:
        use = [m for m in modalities if m in model.modalities]
        if not use or not len(picked):
            return np.zeros((len(picked), len(bundle.labels)), np.float32)
        emb = {m: torch.from_numpy(np.asarray(data.text if m == "text" else data.album[m], np.float32)[picked])
               for m in use}
        present = {m: torch.from_numpy(np.asarray(data.text_present if m == "text" else data.album_present[m],
                                                  bool)[picked]) for m in use}
        values = torch.sigmoid(model.logits_from_embeddings(tagger_inputs(model, emb), present)).numpy()
        return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)

    return scores(["text"], gallery[queries]), queries, scores(list(ALBUM_SIDE), gallery), [data.genres[r] for r in gallery]


def genre_score_baseline(bundle: TaggerBundle, data: JointData, rows: np.ndarray) -> dict[str, float]:
    """Cosine between the tagger's predicted genre scores: albums scored from audio+cover,
    text queries from the text alone (what a user would try first)."""
    return search_metrics(*genre_score_vectors(bundle, data, rows))


def evaluate_search(checkpoint: str | Path, manifest: str | Path, output: str | Path, split: str | None = "test",
                    batch_size: int = 32, num_workers: int = 2, device: str = "auto",
                    progress: bool = True) -> dict[str, float]:
    """Writes ``output/metrics.json`` with exactly the §7 keys; returns them."""
    model = load_search_model(checkpoint)
    records, _ = read_manifest(manifest)
    records = [r for r in records if split is None or r.split == split]
    if not records:
        raise UserInputError(f"{manifest}: no album has split={split}")
    features = model.features(records, default_cache_dir(model.bundle.config, manifest),
                              batch_size=batch_size, num_workers=num_workers, device=device, progress=progress)
    data = data_from_features(features, [r.genres for r in records], len(records))
    vectors = protocol_vectors(model.space, model.bundle.model, data, np.arange(len(records)))
    metrics = metrics_at(vectors, model.genre_weight)
    metrics = {key: metrics[key] for key in METRIC_KEYS}
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics
