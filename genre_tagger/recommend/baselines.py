"""Simple references every recommender result is read against (same evaluation code).

``Popularity``: albums by their number of training plays. ``ItemKNN``: item-item cosine
over who played what in training (co-occurrence), summed over the history with more
weight on recent plays. Neither can rank an album nobody played in training above
chance: they are the warm-start bar the content model must clear.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


class Popularity:
    def __init__(self, n_items: int):
        self.counts = np.zeros(n_items, dtype=np.float64)

    def fit(self, sequences: list[list[int]]) -> "Popularity":
        for seq in sequences:
            np.add.at(self.counts, seq, 1.0)
        return self

    def __call__(self, histories: list[list[int]]) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(histories), len(self.counts)))


class ItemKNN:
    """``sim[i, j] = c_ij / sqrt(n_i n_j)`` over users' training sets; score = recency-weighted sum."""

    def __init__(self, n_items: int, recency: float = 0.8, neighbours: int | None = 100):
        self.n_items, self.recency, self.neighbours = n_items, recency, neighbours
        self.similarity = sparse.csr_matrix((n_items, n_items))

    def fit(self, sequences: list[list[int]]) -> "ItemKNN":
        rows = np.concatenate([np.full(len(set(s)), u) for u, s in enumerate(sequences)]) if sequences else []
        cols = np.concatenate([sorted(set(s)) for s in sequences]) if sequences else []
        plays = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sequences), self.n_items))
        co = (plays.T @ plays).tocsr().astype(np.float64)
        counts = np.asarray(plays.sum(axis=0)).ravel()
        norm = 1.0 / np.sqrt(np.maximum(counts, 1.0))
        sim = sparse.diags(norm) @ co @ sparse.diags(norm)
        sim.setdiag(0.0)
        self.similarity = self._keep_top(sim.tocsr())
        return self

    def _keep_top(self, sim: sparse.csr_matrix) -> sparse.csr_matrix:
        if self.neighbours is None:
            return sim
        dense = sim.toarray() if self.n_items <= 20000 else None
        if dense is None:
            return sim
        if self.n_items > self.neighbours:
            cut = np.partition(dense, -self.neighbours, axis=1)[:, -self.neighbours][:, None]
            dense[dense < cut] = 0.0
        return sparse.csr_matrix(dense)

    def __call__(self, histories: list[list[int]]) -> np.ndarray:
        weights = sparse.lil_matrix((len(histories), self.n_items))
        for row, history in enumerate(histories):
            for age, item in enumerate(reversed(history)):
                weights[row, item] += self.recency ** age
        return np.asarray((weights.tocsr() @ self.similarity).todense())
