"""Album datasets and the collate that gives zero-filled tensors plus presence masks.

A raw batch (``AlbumCollator``) is::

    {"index": [B] long, "ids": list[str], "warnings": list[list[str]],
     "labels": [B, L] float (only when targets were given),
     "<modality>": loader.collate(...)  # e.g. {"mels": ..., "crop_mask": ..., "present": [B]}}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from genre_tagger.config import instantiate
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord


def build_loaders(loader_specs: dict[str, dict], modalities: list[str]) -> dict[str, ModalityLoader]:
    """Instantiate the loader of each requested modality from its class_path spec."""
    return {name: instantiate(loader_specs[name]) for name in modalities}


def load_modality(loader: ModalityLoader, record: AlbumRecord, training: bool) -> tuple[Any, list[str]]:
    """``loader.load`` that never raises: an unexpected failure drops the modality with a warning."""
    try:
        return loader.load(record, training=training)
    except Exception as err:  # one album's bad file must never stop a run
        return None, [f"{loader.modality}: unexpected {type(err).__name__}: {err}"]


class AlbumDataset(Dataset):
    """Albums decoded on access (in DataLoader workers). ``targets``: ``[N, L]`` or None."""

    def __init__(
        self,
        records: list[AlbumRecord],
        loaders: dict[str, ModalityLoader],
        targets: np.ndarray | None = None,
        training: bool = False,
    ):
        self.records = records
        self.loaders = loaders
        self.targets = targets
        self.training = training

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        inputs, warnings = {}, []
        for name, loader in self.loaders.items():
            inputs[name], messages = load_modality(loader, record, self.training)
            warnings.extend(messages)
        item = {"index": index, "id": record.id, "inputs": inputs, "warnings": warnings}
        if self.targets is not None:
            item["labels"] = torch.from_numpy(self.targets[index])
        return item


class AlbumCollator:
    """Picklable collate_fn: per-modality ``loader.collate`` plus ids, indices, labels."""

    def __init__(self, loaders: dict[str, ModalityLoader]):
        self.loaders = loaders

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {
            "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
            "ids": [item["id"] for item in items],
            "warnings": [item["warnings"] for item in items],
        }
        if "labels" in items[0]:
            batch["labels"] = torch.stack([item["labels"] for item in items])
        for name, loader in self.loaders.items():
            batch[name] = loader.collate([item["inputs"][name] for item in items])
        return batch


class PreloadedModalityDataset(Dataset):
    """One modality's preprocessed items kept in memory, for training an encoder for many epochs
    without decoding again. Items are ``loader.load`` outputs (None when absent)."""

    def __init__(self, items: list[Any], targets: np.ndarray, modality: str):
        self.items = items
        self.targets = targets
        self.modality = modality

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "index": index, "id": str(index), "warnings": [],
            "inputs": {self.modality: self.items[index]},
            "labels": torch.from_numpy(self.targets[index]),
        }


class EmbeddingDataset(Dataset):
    """Cached embeddings: ``embeddings[m]`` ``[N, D_m]``, ``present[m]`` ``[N]``, ``targets`` ``[N, L]``.

    Items are ``{"embeddings": {m: [D_m]}, "present": {m: bool}, "labels": [L]}``; torch's
    default collate stacks them into the batch ``GenreTagger.logits_from_embeddings`` takes.
    """

    def __init__(self, embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor], targets: torch.Tensor):
        self.embeddings = embeddings
        self.present = present
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "embeddings": {name: values[index] for name, values in self.embeddings.items()},
            "present": {name: values[index] for name, values in self.present.items()},
            "labels": self.targets[index],
        }
