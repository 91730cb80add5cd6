"""Stage between the encoders and the head: embed the catalog once with the frozen encoders
(cached on disk, ``genre_tagger.features``), and score albums from cached embeddings.

Under DDP (``trainer.world_size > 1``) the albums missing from the cache are split across
ranks by ``trainer.predict`` (as ``tag`` splits a catalog); each rank appends its share to
the cache, and the cache is the gather: afterwards every rank reads the whole catalog
from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader

from genre_tagger.data.dataset import AlbumCollator, AlbumDataset
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.features import (
    SHARD_ALBUMS, EmbeddingStore, ModalityFeatures, album_key, embed_records, encoder_fingerprint,
)
from genre_tagger.models.encoders.base import Encoder
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.prediction import predict_embeddings
from genre_tagger.runs import pick_device
from genre_tagger.runs.trainers import TrainerFactory


@dataclass
class EmbeddingSettings:
    """How the catalog is embedded: cache folder, batch size, decoding workers, trainers for DDP."""

    cache_dir: Path | None
    batch_size: int
    num_workers: int
    trainers: TrainerFactory | None = None
    progress: bool = True

    @property
    def device(self) -> torch.device:
        accelerator = self.trainers.settings.get("accelerator", "auto") if self.trainers else "auto"
        return pick_device("cpu" if accelerator == "cpu" else "auto")


class _EmbedModule(pl.LightningModule):
    """``predict_step``: one raw batch of one modality -> its embeddings ``[B, D]`` and keys."""

    def __init__(self, encoder: Encoder, modality: str, keys: list[str]):
        super().__init__()
        self.encoder, self.modality, self.keys = encoder, modality, keys

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> dict[str, Any]:
        vectors = self.encoder(batch[self.modality]).float().cpu().numpy()
        return {"keys": [self.keys[i] for i in batch["index"].tolist()], "vectors": vectors,
                "present": batch[self.modality]["present"].cpu().numpy(), "warnings": batch["warnings"]}


class _CacheWriter(BasePredictionWriter):
    """Appends each rank's embeddings to the cache folder in shards (no results in memory)."""

    def __init__(self, folder: Path):
        super().__init__(write_interval="batch")
        self.folder, self.pending = folder, []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        self.pending.extend(zip(prediction["keys"], prediction["vectors"], prediction["present"],
                                prediction["warnings"]))
        if len(self.pending) >= SHARD_ALBUMS:
            self.flush()

    def on_predict_end(self, trainer, pl_module) -> None:
        self.flush()

    def flush(self) -> None:
        if self.pending:
            keys, vectors, present, warnings = zip(*self.pending)
            EmbeddingStore(self.folder).append(list(keys), np.stack(vectors), np.array(present), list(warnings))
            self.pending = []


def embed_sharded(records: list[AlbumRecord], loader: ModalityLoader, encoder: Encoder, folder: Path,
                  settings: EmbeddingSettings) -> None:
    """Fill the cache ``folder`` with the albums it lacks, one share per rank."""
    modality = loader.modality
    cached = EmbeddingStore(folder).load()
    keys = [album_key(r, modality) for r in records]
    todo = [i for i, key in enumerate(keys) if key not in cached]
    if not todo:
        return
    module = _EmbedModule(encoder.eval(), modality, [keys[i] for i in todo])
    trainer = settings.trainers(monitor=False)
    trainer.callbacks.append(_CacheWriter(folder))
    dataset = AlbumDataset([records[i] for i in todo], {modality: loader})
    data = DataLoader(dataset, batch_size=settings.batch_size, num_workers=settings.num_workers,
                      collate_fn=AlbumCollator({modality: loader}))
    trainer.predict(module, data, return_predictions=False)
    trainer.strategy.barrier("embedded")  # every rank's share is on disk before anyone reads


def embed_catalog(
    encoders: dict[str, Encoder], loaders: dict[str, ModalityLoader],
    records: list[AlbumRecord], settings: EmbeddingSettings, seconds: dict[str, float] | None = None,
) -> dict[str, ModalityFeatures]:
    """Frozen-encoder embeddings ``{m: [N, D_m]}`` of every album (from the cache where possible).

    Each encoder's spec and its loader's settings key the cache (``features.encoder_fingerprint``).
    ``seconds``, when given, receives the wall time per modality (near zero on a cache hit).
    """
    sharded = settings.cache_dir is not None and settings.trainers is not None and settings.trainers.world_size() > 1
    features = {}
    for modality, encoder in encoders.items():
        clock = time.monotonic()
        if sharded and not hasattr(encoder, "cache_parts"):  # MultiView: cached view by view in extract_features
            fingerprint = encoder_fingerprint(loaders[modality], encoder)
            embed_sharded(records, loaders[modality], encoder, Path(settings.cache_dir) / f"{modality}-{fingerprint}",
                          settings)
        features.update(embed_records({modality: encoder}, loaders, records, settings.cache_dir, settings.batch_size,
                                      settings.num_workers, settings.device, settings.progress))
        if seconds is not None:
            seconds[modality] = time.monotonic() - clock
    return features


def scores_from_features(
    tagger: GenreTagger, features: dict[str, ModalityFeatures], rows: np.ndarray, modalities: list[str] | None = None
) -> np.ndarray:
    """Sigmoid scores ``[len(rows), L]`` through the one prediction path; modalities left out
    of ``modalities`` count as absent."""
    return predict_embeddings(tagger, {m: f.embeddings for m, f in features.items()},
                              {m: f.present for m, f in features.items()}, rows, modalities)


def presence_rates(features: dict[str, ModalityFeatures], rows: np.ndarray) -> dict[str, float]:
    return {m: float(f.present[rows].mean()) if len(rows) else 0.0 for m, f in features.items()}
