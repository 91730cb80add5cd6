"""Per-modality embeddings of records with a tagger bundle's loaders and frozen encoders,
through the shared embedding cache (``genre_tagger.features``), and embeddings of the
generated descriptions (cached the same way, keyed by their text)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genre_tagger.bundle import TaggerBundle
from genre_tagger.data.records import AlbumRecord
from genre_tagger.features import ModalityFeatures, encoder_fingerprint, extract_features


def default_cache_dir(config: dict, manifest: str | Path) -> Path:
    """The run config's ``data.cache_dir``, else ``<manifest folder>/.genre_tagger_cache`` (as ``train``)."""
    cache = config.get("data", {}).get("cache_dir")
    return Path(cache) if cache else Path(manifest).resolve().parent / ".genre_tagger_cache"


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def bundle_features(bundle: TaggerBundle, records: list[AlbumRecord], cache_dir: Path | None,
                    modalities: list[str] | None = None, batch_size: int = 32, num_workers: int = 2,
                    device: str = "auto", progress: bool = True) -> dict[str, ModalityFeatures]:
    """``{m: ModalityFeatures}`` (embeddings ``[N, D_m]``, present ``[N]``) for the bundle's modalities."""
    return bundle.embed(records, cache_dir, modalities, batch_size, num_workers, device, progress)


@dataclass
class DescriptionEmbeddings:
    """Text-encoder embeddings of generated descriptions: ``embeddings [n, D_text]`` and
    ``owner [n]``, the row of the album each describes."""

    embeddings: np.ndarray
    owner: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> "DescriptionEmbeddings":
        return cls(np.zeros((0, dim), np.float32), np.zeros(0, np.int64))


def embed_descriptions(bundle: TaggerBundle, records: list[AlbumRecord], rows: np.ndarray, source,
                       cache_dir: Path | None, progress: bool = True, device: str = "auto",
                       view=None) -> DescriptionEmbeddings:
    """``source.describe`` each album of ``rows`` and embed the texts with the text encoder
    (and the sparse text ``view``, appended, when given)."""
    encoder = bundle.model.encoders["text"]
    texts, owner = [], []
    for row in rows:
        for k, text in enumerate(source.describe(records[row])):
            texts.append(AlbumRecord(id=f"{records[row].id}#description{k}", texts=[text]))
            owner.append(int(row))
    if not texts:
        return DescriptionEmbeddings.empty(encoder.out_dim)
    loader = bundle.loaders["text"]
    found = extract_features(texts, loader, encoder, cache_dir, batch_size=64, num_workers=0,
                             device=pick_device(device), progress=progress)
    encoder.cpu()
    if view is not None:
        from genre_tagger.search.text_view import view_features, widen

        found = widen(found, view_features(view, bundle, texts, cache_dir, progress))
    keep = found.present
    return DescriptionEmbeddings(found.embeddings[keep], np.asarray(owner, np.int64)[keep])
