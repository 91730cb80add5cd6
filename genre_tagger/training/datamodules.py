"""LightningDataModules: decoded albums (end to end), one preloaded modality (encoder
pre-training) and cached embeddings (the fusion head). Under DDP, Lightning gives each
rank its share of every split through a DistributedSampler."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from genre_tagger.data.dataset import AlbumCollator, AlbumDataset, EmbeddingDataset, PreloadedModalityDataset
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.features import ModalityFeatures
from genre_tagger.data.labelled import TrainingData


class SplitDataModule(pl.LightningDataModule):
    """A train and a val dataset with their batch sizes, collate and worker count."""

    def __init__(self, train: Dataset, val: Dataset, batch_size: int, val_batch_size: int | None = None,
                 collate: Callable | None = None, num_workers: int = 0):
        super().__init__()
        self.train_set, self.val_set = train, val
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.collate, self.num_workers = collate, num_workers

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        # Batch sizes are global: under DDP each of N ranks takes 1/N of a batch, so a run
        # takes as many optimizer steps of the same effective batch as on one process.
        world = self.trainer.world_size if self.trainer is not None else 1
        batch_size = max(1, batch_size // max(1, world))
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=self.collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, False)


def embedding_dataset(features: dict[str, ModalityFeatures], targets: np.ndarray, rows: np.ndarray,
                      modalities: list[str]) -> EmbeddingDataset:
    """Rows ``rows`` of the cached embeddings ``{m: [N, D_m]}`` with their targets ``[N, L]``."""
    return EmbeddingDataset(
        {m: torch.from_numpy(features[m].embeddings[rows]) for m in modalities},
        {m: torch.from_numpy(features[m].present[rows]) for m in modalities},
        torch.from_numpy(targets[rows]),
    )


class EmbeddingDataModule(SplitDataModule):
    """Cached embeddings of the train and val splits: batches for ``logits_from_embeddings``."""

    def __init__(self, features: dict[str, ModalityFeatures], data: TrainingData, modalities: list[str],
                 batch_size: int):
        super().__init__(embedding_dataset(features, data.targets, data.splits["train"], modalities),
                         embedding_dataset(features, data.targets, data.splits["val"], modalities),
                         batch_size, val_batch_size=256)


class AlbumDataModule(SplitDataModule):
    """Albums decoded from their files every epoch (random crops and windows when training)."""

    def __init__(self, data: TrainingData, loaders: dict[str, ModalityLoader], batch_size: int, num_workers: int):
        def albums(split: str, training: bool) -> AlbumDataset:
            rows = data.splits[split]
            return AlbumDataset(data.rows(split), loaders, data.targets[rows], training=training)

        super().__init__(albums("train", True), albums("val", False), batch_size, collate=AlbumCollator(loaders),
                         num_workers=num_workers)


class PreloadedDataModule(SplitDataModule):
    """One modality's inputs decoded once and kept in memory (``items``: train rows, then val)."""

    def __init__(self, items: list[Any], targets: np.ndarray, n_train: int, loader: ModalityLoader, batch_size: int):
        modality = loader.modality
        super().__init__(PreloadedModalityDataset(items[:n_train], targets[:n_train], modality),
                         PreloadedModalityDataset(items[n_train:], targets[n_train:], modality),
                         batch_size, collate=AlbumCollator({modality: loader}))
