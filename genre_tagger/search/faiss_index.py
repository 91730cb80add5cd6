"""The FAISS side of an index folder: which index type for how many albums, building it
from the Parquet parts, and reading it back.

Exact inner product (``IndexFlatIP``) up to ``exact_up_to`` albums; beyond, an inverted
file (``IndexIVFFlat``, inner product, ``nlist`` ~ 4 sqrt(N) lists, ``nprobe`` searched),
which keeps every vector (same memory as flat) but scans about 1/16 of them per query.
Vectors are unit length, so inner product is cosine similarity.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np

EXACT_UP_TO = 200_000
SINGLE_QUERY_THREADS = 1  # one query at a time: OpenMP threads cost more than they give


def n_probe(n: int) -> int:
    """Lists scanned per query: 1/16 of them, at least 32 (see benchmarks/RESULTS.md)."""
    return min(n_lists(n), max(32, n_lists(n) // 16))


def choose_kind(n: int, exact_up_to: int = EXACT_UP_TO, requested: str = "auto") -> str:
    """``flat`` or ``ivf`` (or ``hnsw`` when asked for)."""
    if requested != "auto":
        return requested
    return "flat" if n <= exact_up_to else "ivf"


def describe(kind: str, n: int) -> str:
    if kind == "flat":
        return f"exact inner product (IndexFlatIP, {n} albums)"
    if kind == "ivf":
        return f"approximate: IndexIVFFlat, {n_lists(n)} lists, {n_probe(n)} probed per query ({n} albums)"
    return f"approximate: IndexHNSWFlat, M=32, efSearch=128 ({n} albums)"


def n_lists(n: int) -> int:
    """~4 sqrt(N) lists, at most 65,536, and at least 39 training points per list (FAISS's minimum)."""
    return max(1, min(65536, int(4 * math.sqrt(max(n, 1))), n // 39))


def build(kind: str, dim: int, n: int, chunks: Iterator[np.ndarray], sample: np.ndarray):
    """A FAISS index of ``kind`` over the vectors of ``chunks`` (``[n_i, dim]`` float32 each);
    ``sample`` trains IVF's coarse quantiser."""
    import faiss

    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        quantiser = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantiser, dim, n_lists(n), faiss.METRIC_INNER_PRODUCT)
        index.train(np.ascontiguousarray(sample, np.float32))
        index.nprobe = n_probe(n)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    for vectors in chunks:
        index.add(np.ascontiguousarray(vectors, np.float32))
    return index


def save(index, path: Path) -> None:
    import faiss

    partial = path.with_suffix(".partial")
    faiss.write_index(index, str(partial))
    partial.replace(path)


def load(path: Path):
    """Read an index for single queries; IVF gets its direct map (vectors by position, for
    "more like this"; nprobe is stored in the file)."""
    import faiss

    faiss.omp_set_num_threads(SINGLE_QUERY_THREADS)
    index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexIVF):
        index.make_direct_map()
    return index
