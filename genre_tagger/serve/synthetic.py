"""Served catalogs of any size without decoding anything: for tests and the load benchmark.

``write_vector_index`` writes an index folder in the layout `genre-tagger index` writes
(``index.json``, ``parts/part-*.parquet``, ``index.faiss``) from given vectors, so "more
like this" and the map can be served without a model; with ``checkpoint`` and ``space``
(a checkpoint's joint-space digest) text queries embed through that checkpoint.
``write_catalog_records`` writes a manifest and a tag output of ``n`` made-up albums
(no media files), genres drawn from a few clusters so that filters and the map have
something to show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genre_tagger.search import faiss_index
from genre_tagger.search.index import IndexMeta

PART_ROWS = 1024  # as `index` writes them
GENRES = ("Rock", "Pop", "Jazz", "Classical", "Electronic", "Hip-Hop", "Folk", "Metal", "Blues", "Country",
          "Soul", "Reggae", "Latin", "Ambient", "Punk", "World")
WORDS = ("Red", "Blue", "Night", "Morning", "River", "Glass", "Paper", "Echo", "Silver", "Winter", "Summer",
         "Broken", "Golden", "Quiet", "Electric", "Distant", "Hollow", "Wild", "Velvet", "Iron")


def write_vector_index(folder: str | Path, ids: list[str], vectors: np.ndarray, checkpoint: str = "",
                       space: str = "synthetic", fields: list[dict] | None = None) -> Path:
    """An index folder over ``vectors [N, D]`` (made unit length) for ``ids``; returns the folder."""
    folder = Path(folder)
    (folder / "parts").mkdir(parents=True, exist_ok=True)
    vectors = np.asarray(vectors, np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    n, dim = vectors.shape
    meta = IndexMeta(checkpoint, space, dim)
    for k, start in enumerate(range(0, n, PART_ROWS)):
        rows = slice(start, min(start + PART_ROWS, n))
        table = pa.table({
            "id": pa.array(ids[rows], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors[rows].ravel()), dim),
            "modalities": pa.array([["audio"]] * (rows.stop - rows.start), pa.list_(pa.string())),
            "fields": pa.array([json.dumps(f) for f in (fields[rows] if fields else [{}] * (rows.stop - rows.start))],
                               pa.string()),
        })
        name = f"parts/part-{k:013d}-synth.parquet"
        pq.write_table(table, folder / name)
        meta.parts.append({"file": name, "rows": rows.stop - rows.start})
    meta.kind = faiss_index.choose_kind(n)
    sample = vectors[: 64 * faiss_index.n_lists(n)] if meta.kind == "ivf" else np.zeros((0, dim), np.float32)
    chunks = (vectors[s:s + PART_ROWS] for s in range(0, n, PART_ROWS))
    faiss_index.save(faiss_index.build(meta.kind, dim, n, chunks, sample), folder / "index.faiss")
    meta.description = faiss_index.describe(meta.kind, n)
    meta.write(folder)
    return folder


def write_catalog_records(folder: str | Path, n: int, seed: int = 0, dim: int = 32,
                          error_share: float = 0.02, warning_share: float = 0.05) -> dict[str, Path | np.ndarray]:
    """``folder/manifest.jsonl`` and ``folder/tags.jsonl`` for ``n`` albums, and their vectors
    (``[n, dim]``, clustered by top genre): ``{"manifest", "tags", "ids", "vectors"}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(GENRES), dim))
    ids = [f"alb{i:07d}" for i in range(n)]
    top = rng.integers(0, len(GENRES), n)
    vectors = centres[top] + 0.8 * rng.normal(size=(n, dim))
    kinds = rng.random(n)
    modalities = ("audio", "image", "text")
    with open(folder / "manifest.jsonl", "w", encoding="utf-8") as manifest, \
            open(folder / "tags.jsonl", "w", encoding="utf-8") as tags:
        for i, album_id in enumerate(ids):
            title = f"{WORDS[rng.integers(len(WORDS))]} {WORDS[rng.integers(len(WORDS))]}"
            artist = f"The {WORDS[rng.integers(len(WORDS))]} {('Band', 'Trio', 'Quartet', 'Ensemble')[i % 4]}"
            present = [m for m in modalities if rng.random() < 0.85] or ["audio"]
            manifest.write(json.dumps({
                "id": album_id, "artist": artist, "title": title, "split": ("train", "val", "test")[i % 3],
                "genres": [GENRES[top[i]]], "audio": [f"audio/{album_id}.mp3"] if "audio" in present else None,
                "cover": f"covers/{album_id}.jpg" if "image" in present else None,
                "texts": [f"{title} by {artist}"] if "text" in present else None, "year": 1960 + i % 60,
            }) + "\n")
            if kinds[i] < error_share:
                record = {"id": album_id, "status": "error", "error": "no usable modality: audio: cannot decode",
                          "modalities": [], "warnings": ["audio: cannot decode 'audio/x.mp3': truncated file"]}
            else:
                raw = rng.random(len(GENRES)) * 0.5
                raw[top[i]] = 0.55 + 0.45 * rng.random()
                order = np.argsort(-raw)[:10]
                record = {"id": album_id, "status": "ok",
                          "genres": [GENRES[j] for j in order if raw[j] >= 0.5],
                          "scores": {GENRES[j]: round(float(raw[j]), 4) for j in order},
                          "modalities": present,
                          "warnings": ["cover: cannot decode 'covers/x.jpg': truncated file"]
                          if kinds[i] < error_share + warning_share else []}
            record.update({"title": title, "year": 1960 + i % 60})
            tags.write(json.dumps(record) + "\n")
    return {"manifest": folder / "manifest.jsonl", "tags": folder / "tags.jsonl", "ids": ids,
            "vectors": vectors.astype(np.float32)}
