"""What the search commands load: a checkpoint's tagger bundle with its joint space and text
view (``SearchModel``), and the search vectors of albums and texts it makes.

A search vector is ``[B, width]``: the unit joint-space vector and the tagger's unit genre
scores weighted by ``genre_weight`` for albums, and for text queries so that they rank by
``text_genre_weight`` (``combine.py``). Embeddings come from the bundle
(``TaggerBundle.embed``, through the cache when given one), the text view's from its own
encoder beside them (``text_view.view_features``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.features import ModalityFeatures
from genre_tagger.models.encoders.sparse_text import SparseTextView
from genre_tagger.runs import default_cache_dir
from genre_tagger.search.combine import combine, query_weight
from genre_tagger.search.data import JointData, genre_vectors, joint_data, text_side
from genre_tagger.search.joint import JointSpace
from genre_tagger.search.payload import VERSION, genre_weights, load_space, payload_version, space_digest
from genre_tagger.search.text_view import load_view, view_features


@dataclass
class SearchModel:
    """A tagger bundle with its joint space, text view and index settings; ``text_side``: the
    bundle's modality whose texts the view reads; ``digest``: what identifies the stored space."""

    bundle: TaggerBundle
    space: JointSpace
    view: SparseTextView
    text_side: str
    index_settings: dict
    path: Path
    digest: str
    genre_weight: float = 0.0  # albums' (the gallery's; album-to-album)
    text_genre_weight: float | None = None  # text queries'; None: genre_weight

    @property
    def album_side(self) -> list[str]:
        return self.space.album_modalities

    @property
    def modalities(self) -> list[str]:
        """Every modality a search vector reads, in the bundle's (canonical) order."""
        return [m for m in self.bundle.modalities if m in self.album_side or m == self.text_side]

    @property
    def width(self) -> int:
        return self.space.dim + self.bundle.n_labels

    def cache_dir(self, manifest: str | Path) -> Path:
        """The embedding cache `train` filled for ``manifest``'s catalog (the run's ``data.cache_dir``)."""
        return default_cache_dir((self.bundle.config.get("data") or {}).get("cache_dir"), manifest)

    def embed(self, records: list[AlbumRecord], cache_dir: Path | None, modalities: list[str] | None = None,
              batch_size: int = 32, num_workers: int = 2, device: str = "auto", progress: bool = True
              ) -> tuple[dict[str, ModalityFeatures], ModalityFeatures | None]:
        """``(features, view)``: the bundle's ``{m: ModalityFeatures}`` of ``modalities`` (default:
        ``self.modalities``) and the text view's vectors of the records' texts (None when the
        text side is not among them)."""
        modalities = self.modalities if modalities is None else modalities
        features = self.bundle.embed(records, cache_dir, modalities, batch_size, num_workers, device, progress)
        view = None
        if self.text_side in modalities:
            view = view_features(self.view, self.bundle.loaders[self.text_side], records, cache_dir, progress)
        return features, view

    @torch.no_grad()
    def album(self, features: dict[str, ModalityFeatures], view: ModalityFeatures | None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Albums' search vectors ``[N, width]`` from what ``embed`` gave (every modality in it
        counts, its texts included), and ``known [N]`` (zeros where nothing is present)."""
        inputs = {m: torch.from_numpy(features[m].embeddings) for m in self.album_side if m in features}
        present = {m: torch.from_numpy(features[m].present) for m in self.album_side if m in features}
        text = torch.from_numpy(view.embeddings) if view is not None else None
        text_present = torch.from_numpy(view.present) if view is not None else None
        joint, known = self.space.album(inputs, present, text, text_present)
        genre = torch.from_numpy(genre_vectors(self.bundle, features, list(features)))
        return (combine(joint, genre, self.genre_weight) * known.unsqueeze(-1)).numpy(), known.numpy()

    @torch.no_grad()
    def text(self, features: dict[str, ModalityFeatures], view: ModalityFeatures) -> np.ndarray:
        """Text queries' search vectors ``[N, width]`` from what ``embed`` gave for the text side."""
        joint = self.space.text(torch.from_numpy(view.embeddings))
        genre = torch.from_numpy(genre_vectors(self.bundle, features, [self.text_side]))
        return combine(joint, genre, query_weight(self.genre_weight, self.text_genre_weight)).numpy()

    def joint_data(self, features: dict[str, ModalityFeatures], view: ModalityFeatures,
                   genres: Sequence) -> JointData:
        """The albums of ``features`` as one split ``eval`` for the search protocol (no descriptions)."""
        rows = np.arange(len(view.present))
        return joint_data(self.bundle, features, view, genres, {"eval": rows}, self.album_side, self.text_side)


def load_search_model(path: str | Path, device: str | torch.device = "cpu") -> SearchModel:
    """The checkpoint's tagger bundle and joint space; a clear error when it holds none."""
    bundle = load_checkpoint(path, device=device)
    payload = bundle.extra.get("joint_space")
    if "joint_space_unreadable" in bundle.extra:
        raise UserInputError(f"{path}: {bundle.extra['joint_space_unreadable']}; train again with `genre-tagger train`")
    if payload_version(payload) != VERSION:
        raise UserInputError(f"{path} holds no joint search space (made with search off, without text, or before "
                             "search existed): train again with `genre-tagger train` to get one")
    text = text_side(bundle)
    if text is None:
        raise UserInputError(f"{path}: its tagger reads no text, which its joint search space needs")
    digest = space_digest(payload)
    album_weight, text_weight = genre_weights(payload)
    return SearchModel(bundle, load_space(payload), load_view(payload["text_view"]), text,
                       dict(payload.get("index") or {}), Path(path).resolve(), digest, album_weight, text_weight)
