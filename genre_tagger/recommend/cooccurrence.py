"""The co-occurrence signal of the training events, for the model to start from.

Item-kNN ranks by who-played-what-with-what; a sequence model trained from random ids
has to rediscover that from a few plays per album, which is slow and noisy on small data.
``cooccurrence_vectors`` turns the same training events into one vector per album: the
leading eigenvectors of the albums' cosine co-occurrence matrix (the one item-kNN uses),
scaled by the square root of their eigenvalues, so that ``u_i . u_j`` approximates the
cosine of albums i and j. The id embeddings start there (``train_one``); training then
refines them with the sequence loss. Nothing is added to the model's scores at serving.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def cosine_cooccurrence(sequences: list[list[int]], n_items: int) -> sparse.csr_matrix:
    """``[n_items, n_items]``: ``c_ij / sqrt(n_i n_j)`` over users' sets of training plays, diagonal 0."""
    rows = [np.full(len(set(s)), u) for u, s in enumerate(sequences) if s]
    cols = [np.fromiter(sorted(set(s)), dtype=np.int64) for s in sequences if s]
    if not rows:
        return sparse.csr_matrix((n_items, n_items))
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    plays = sparse.csr_matrix((np.ones(len(rows_a)), (rows_a, cols_a)), shape=(len(sequences), n_items))
    counts = np.asarray(plays.sum(axis=0)).ravel()
    norm = sparse.diags(1.0 / np.sqrt(np.maximum(counts, 1.0)))
    sim = (norm @ (plays.T @ plays) @ norm).tocsr()
    sim.setdiag(0.0)
    sim.eliminate_zeros()
    return sim


def cooccurrence_vectors(sequences: list[list[int]], items: np.ndarray, dim: int, scale: float) -> np.ndarray:
    """``[len(items), dim]`` float32 vectors for the catalog rows ``items`` (e.g. the albums with
    an id embedding, in id order), from the training ``sequences`` (catalog rows).

    Rows are scaled so that their mean norm is ``scale * sqrt(dim)`` (the id embedding's
    initial size); an album that co-occurs with nothing gets a zero vector.
    """
    items = np.asarray(items, dtype=np.int64)
    n_items = int(max(items.max(initial=-1), max((max(s) for s in sequences if s), default=-1)) + 1)
    sim = cosine_cooccurrence(sequences, n_items)[items][:, items].toarray()
    k = min(dim, len(items))
    values, vectors = np.linalg.eigh(sim)                 # ascending
    top = np.argsort(values)[::-1][:k]
    out = np.zeros((len(items), dim), dtype=np.float64)
    out[:, :k] = vectors[:, top] * np.sqrt(np.maximum(values[top], 0.0))
    norms = np.linalg.norm(out, axis=1)
    mean = norms[norms > 0].mean() if (norms > 0).any() else 1.0
    return (out * (scale * np.sqrt(dim) / mean)).astype(np.float32)
