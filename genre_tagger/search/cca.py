"""Regularised canonical correlation analysis (CCA) between albums and their texts: the
closed-form linear joint space.

What a review says about one album's own sound (tempo, distortion, ...) is a handful of words
among many; a contrastive linear map from thousands of word features, trained on a few
thousand albums, learns the training artists' pet words first and overfits within a few
epochs. CCA instead finds the few directions along which an album's album-side features and
its words vary *together* across the catalog (the album's genres and the sounds the reviews
name), with ridge terms that keep the rare words from being fitted one by one. Measured
against the contrastive form in ``benchmarks/RESULTS.md`` (Search).

Both sides are centred; ``album_ridge`` and ``text_ridge`` are relative to each side's mean
feature variance (so one setting suits inputs of any scale). Two exact solvers: with fewer
pairs than features on a side, through the thin SVDs of the two data matrices (cost
``O(N^2 (D_album + D_text))``, no ``D x D`` matrix); with more, through the covariances
(``O(N D_album^2 + D^3)``, memory flat in N, the sparse text view multiplied as sparse), which is
what a catalog of tens of thousands of albums needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np


@dataclass
class CanonicalMaps:
    """One fitted CCA: ``album_mean [D_a]``, ``album_map [D_a, k]``, ``text_mean [D_t]``,
    ``text_map [D_t, k]`` and the canonical ``correlations [k]`` (descending). A side's vector
    is ``(x - mean) @ map * correlations``: directions weighted by how much the two sides agree."""

    album_mean: np.ndarray
    album_map: np.ndarray
    text_mean: np.ndarray
    text_map: np.ndarray
    correlations: np.ndarray
    album_ridge: float
    text_ridge: float

    @property
    def dim(self) -> int:
        return int(self.album_map.shape[1])

    def album(self, x: np.ndarray) -> np.ndarray:
        """``[B, D_a] -> [B, k]``."""
        return (x - self.album_mean) @ self.album_map * self.correlations

    def text(self, y: np.ndarray) -> np.ndarray:
        """``[B, D_t] -> [B, k]``."""
        return (y - self.text_mean) @ self.text_map * self.correlations


class _Side:
    """The thin SVD of one centred side ``[N, D]`` and its mean feature variance."""

    def __init__(self, x: np.ndarray):
        x = np.asarray(x, np.float64)
        self.mean = x.mean(axis=0)
        self.u, self.s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.v = vt.T
        self.scale = float((self.s ** 2).sum() / (len(x) * x.shape[1])) or 1.0

    def gains(self, ridge: float, n: int) -> np.ndarray:
        """``[r]``: 1 / sqrt(eigenvalue of the covariance + ridge * mean variance)."""
        return 1.0 / np.sqrt(self.s ** 2 / n + ridge * self.scale)


def canonical_maps(album: np.ndarray, text: np.ndarray, album_ridges: Sequence[float],
                   text_ridges: Sequence[float], dims: Sequence[int], solver: str = "auto") -> Iterator[CanonicalMaps]:
    """Every ``CanonicalMaps`` of the grid ``album_ridges x text_ridges x dims`` for the paired
    rows ``album [N, D_a]``, ``text [N, D_t]`` (row i of both: one album). ``dims`` above the
    rank available are cut to it. ``solver``: "svd", "covariance" or "auto" (covariance once N
    exceeds both widths)."""
    if len(album) != len(text) or len(album) < 2:
        raise ValueError("CCA needs at least 2 paired rows, as many album rows as text rows")
    if solver == "auto":
        solver = "covariance" if len(album) > max(album.shape[1], text.shape[1]) else "svd"
    if solver == "covariance":
        yield from _covariance_maps(album, text, album_ridges, text_ridges, dims)
        return
    if solver != "svd":
        raise ValueError(f"solver must be 'svd', 'covariance' or 'auto', got {solver!r}")
    n = len(album)
    a, t = _Side(album), _Side(text)
    cross = a.u.T @ t.u
    for album_ridge in album_ridges:
        ga = a.gains(album_ridge, n)
        for text_ridge in text_ridges:
            gt = t.gains(text_ridge, n)
            # The whitened cross-covariance in the two row spaces: (s_a g_a) U_a' U_t (s_t g_t) / N.
            core = (a.s * ga)[:, None] * cross * (t.s * gt)[None, :] / n
            left, correlations, right_t = np.linalg.svd(core)
            for dim in dims:
                k = max(1, min(int(dim), len(correlations)))
                yield CanonicalMaps(a.mean, a.v @ (ga[:, None] * left[:, :k]), t.mean,
                                    t.v @ (gt[:, None] * right_t[:k].T), correlations[:k].copy(),
                                    float(album_ridge), float(text_ridge))


def _centred_products(album: np.ndarray, text: np.ndarray) -> tuple:
    """Means and ``(C_aa, C_tt, C_at)`` covariances; the text side (a sparse view, mostly
    zeros) multiplied as a sparse matrix."""
    from scipy import sparse

    n = len(album)
    a = np.asarray(album, np.float64)
    t = sparse.csr_matrix(np.asarray(text, np.float64))
    mean_a, mean_t = a.mean(axis=0), np.asarray(t.mean(axis=0)).ravel()
    c_aa = (a.T @ a) / n - np.outer(mean_a, mean_a)
    c_tt = np.asarray((t.T @ t).todense()) / n - np.outer(mean_t, mean_t)
    c_at = np.asarray((t.T @ a).T) / n - np.outer(mean_a, mean_t)
    return mean_a, mean_t, c_aa, c_tt, c_at


def _covariance_maps(album, text, album_ridges, text_ridges, dims) -> Iterator[CanonicalMaps]:
    mean_a, mean_t, c_aa, c_tt, c_at = _centred_products(album, text)
    (e_a, q_a), (e_t, q_t) = np.linalg.eigh(c_aa), np.linalg.eigh(c_tt)
    e_a, e_t = np.clip(e_a, 0, None), np.clip(e_t, 0, None)
    scale_a, scale_t = (float(e_a.mean()) or 1.0), (float(e_t.mean()) or 1.0)
    for album_ridge in album_ridges:
        w_a = (q_a / np.sqrt(e_a + album_ridge * scale_a)) @ q_a.T  # (C_aa + r I)^(-1/2)
        for text_ridge in text_ridges:
            w_t = (q_t / np.sqrt(e_t + text_ridge * scale_t)) @ q_t.T
            left, correlations, right_t = np.linalg.svd(w_a @ c_at @ w_t, full_matrices=False)
            for dim in dims:
                k = max(1, min(int(dim), len(correlations)))
                yield CanonicalMaps(mean_a, w_a @ left[:, :k], mean_t, w_t @ right_t[:k].T,
                                    correlations[:k].copy(), float(album_ridge), float(text_ridge))
