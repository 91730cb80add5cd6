"""What the joint space is fitted and scored on, from a tagger bundle's cached embeddings.

The two sides: the *text side* is the bundle's modality read by a ``TextLoader`` (its texts
are what a text query is; the text view reads their tokens), the *album side* every other
modality the bundle has. ``JointData`` holds N albums' album-side embeddings, the text
view's vectors of their own texts and of their generated descriptions, and the tagger's
genre-score vectors (``genre_vectors``, through ``TaggerBundle.scores``) that the search
vectors carry beside the joint part (``combine.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from genre_tagger.bundle import TaggerBundle
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.data.text import TextLoader
from genre_tagger.features import ModalityFeatures
from genre_tagger.models.probes import without_presence_scale
from genre_tagger.search.text_view import view_features


def text_side(bundle: TaggerBundle) -> str | None:
    """The first of the bundle's modalities (canonical order) read by a ``TextLoader``, or None."""
    return next((m for m in bundle.modalities if isinstance(bundle.loaders.get(m), TextLoader)), None)


def album_side(bundle: TaggerBundle) -> list[str]:
    """Every modality of the bundle but the text side, in canonical order."""
    text = text_side(bundle)
    return [m for m in bundle.modalities if m != text]


@dataclass
class DescriptionEmbeddings:
    """The text view's vectors of generated descriptions: ``embeddings [n, text_dim]`` and
    ``owner [n]``, the row of the album each describes."""

    embeddings: np.ndarray
    owner: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> "DescriptionEmbeddings":
        return cls(np.zeros((0, dim), np.float32), np.zeros(0, np.int64))


@dataclass
class JointData:
    """N albums: ``album {m: [N, D_m]}`` / ``album_present {m: [N]}`` for the album side, the
    text view's vectors of their own texts ``text [N, text_dim]`` / ``text_present [N]``, the
    generated ``descriptions``, the albums' ``genres`` and ``splits`` (row indices), and the
    tagger's unit genre-score vectors ``album_scores [N, L]`` (from the album side) and
    ``text_scores [N, L]`` (from the texts alone); zeros where nothing is present, None when
    no tagger is involved (the search vectors are then the joint part alone)."""

    album: dict[str, np.ndarray]
    album_present: dict[str, np.ndarray]
    text: np.ndarray
    text_present: np.ndarray
    descriptions: DescriptionEmbeddings
    genres: Sequence[Sequence[str] | None]
    splits: dict[str, np.ndarray]
    album_scores: np.ndarray | None = None
    text_scores: np.ndarray | None = None


def genre_vectors(bundle: TaggerBundle, features: dict[str, ModalityFeatures], modalities: list[str]) -> np.ndarray:
    """``[N, L]``: the tagger's sigmoid scores from ``modalities`` (those in ``features``; the
    others count as absent), unit length; all zeros for a row with none of them present.
    Read before the presence scale (models/probes.py): a profile, compared by cosine."""
    used = [m for m in modalities if m in features and m in bundle.modalities]
    n = len(next(iter(features.values())).present)
    if not used:
        return np.zeros((n, bundle.n_labels), np.float32)
    with without_presence_scale():
        scores = bundle.scores({m: features[m] for m in used}, modalities=used)
    known = np.any([np.asarray(features[m].present, bool) for m in used], axis=0)
    norms = np.maximum(np.linalg.norm(scores, axis=1, keepdims=True), 1e-12)
    return (scores / norms * known[:, None]).astype(np.float32)


def joint_data(bundle: TaggerBundle, features: dict[str, ModalityFeatures], view: ModalityFeatures,
               genres: Sequence, splits: dict[str, np.ndarray], albums: list[str], text: str,
               descriptions: DescriptionEmbeddings | None = None) -> JointData:
    """``JointData`` from embedded ``features`` (album-side modalities ``albums``, text side
    ``text``) and the text view's vectors ``view`` of the same albums."""
    albums = [m for m in albums if m in features]
    return JointData({m: features[m].embeddings for m in albums}, {m: features[m].present for m in albums},
                     view.embeddings, view.present,
                     descriptions if descriptions is not None else DescriptionEmbeddings.empty(view.embeddings.shape[1]),
                     genres, splits, genre_vectors(bundle, features, albums), genre_vectors(bundle, features, [text]))


def embed_descriptions(view, loader: ModalityLoader, records: list[AlbumRecord], rows: np.ndarray, source,
                       cache_dir: Path | None, progress: bool = True) -> DescriptionEmbeddings:
    """``source.describe`` each album of ``rows`` and embed the texts with the text ``view``
    (through the embedding cache), read by the text side's ``loader``."""
    texts, owner = [], []
    for row in rows:
        for k, text in enumerate(source.describe(records[row])):
            texts.append(AlbumRecord(id=f"{records[row].id}#description{k}", texts=[text]))
            owner.append(int(row))
    if not texts:
        return DescriptionEmbeddings.empty(view.out_dim)
    found = view_features(view, loader, texts, cache_dir, progress)
    keep = found.present
    return DescriptionEmbeddings(found.embeddings[keep], np.asarray(owner, np.int64)[keep])
