"""Running frozen encoders over albums, through the cache (and decoding for encoder training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre_tagger.data.dataset import AlbumCollator, AlbumDataset
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.features.keys import album_key, encoder_fingerprint
from genre_tagger.features.store import SHARD_ALBUMS, EmbeddingStore, ModalityFeatures, flush
from genre_tagger.models.encoders.base import Encoder


def _batches(
    records: list[AlbumRecord], loader: ModalityLoader, batch_size: int, num_workers: int
) -> Iterable[dict[str, Any]]:
    dataset = AlbumDataset(records, {loader.modality: loader})
    return DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=AlbumCollator(dataset.loaders),
        persistent_workers=False,
    )


def _to_device(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: value.to(device, non_blocking=True) for name, value in inputs.items()}


def extract_features(
    records: list[AlbumRecord],
    loader: ModalityLoader,
    encoder: Encoder,
    fingerprint: str,
    cache_dir: Path | None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ModalityFeatures:
    """Embeddings of ``records`` for the loader's modality, from the cache where possible.

    An encoder made of views (``MultiView``) is cached view by view, each under its own
    fingerprint: refitting a tf-idf view does not recompute the MiniLM view beside it.
    """
    view_parts = getattr(encoder, "cache_parts", None)
    if view_parts is not None:
        parts = [extract_features(records, loader, view, encoder_fingerprint(loader, spec, view), cache_dir,
                                  batch_size, num_workers, device, progress) for view, spec in view_parts()]
        return ModalityFeatures(np.concatenate([p.embeddings for p in parts], axis=1), parts[0].present,
                                parts[0].warnings)
    modality = loader.modality
    keys = [album_key(record, modality) for record in records]
    store = EmbeddingStore(Path(cache_dir) / f"{modality}-{fingerprint}") if cache_dir else None
    cached = store.load() if store else {}
    todo = [position for position, key in enumerate(keys) if key not in cached]
    if todo:
        encoder = encoder.to(device).eval()
        bar = tqdm(total=len(todo), desc=f"embedding {modality}", unit="album", disable=not progress)
        pending: list[tuple[str, np.ndarray, bool, list[str]]] = []
        with torch.inference_mode():
            for batch in _batches([records[p] for p in todo], loader, batch_size, num_workers):
                vectors = encoder(_to_device(batch[modality], torch.device(device))).float().cpu().numpy()
                present = batch[modality]["present"].numpy()
                for offset, album_index in enumerate(batch["index"].tolist()):
                    key = keys[todo[album_index]]
                    entry = (vectors[offset], bool(present[offset]), batch["warnings"][offset])
                    cached[key] = entry
                    pending.append((key, *entry))
                bar.update(len(batch["ids"]))
                if store and len(pending) >= SHARD_ALBUMS:
                    flush(store, pending)
        bar.close()
        if store and pending:
            flush(store, pending)
    dim = encoder.out_dim
    embeddings = np.zeros((len(records), dim), dtype=np.float32)
    present = np.zeros(len(records), dtype=bool)
    warnings: list[list[str]] = []
    for position, key in enumerate(keys):
        vector, is_present, messages = cached[key]
        embeddings[position], present[position] = vector, is_present
        warnings.append(messages)
    return ModalityFeatures(embeddings, present, warnings)


def preload_items(
    records: list[AlbumRecord], loader: ModalityLoader, num_workers: int = 0, progress: bool = True
) -> tuple[list[Any], list[list[str]]]:
    """Decode one modality of every album once (``loader.load`` outputs), for encoder training."""
    dataset = AlbumDataset(records, {loader.modality: loader})
    data = DataLoader(dataset, batch_size=16, num_workers=num_workers, collate_fn=list)
    items: list[Any] = [None] * len(records)
    warnings: list[list[str]] = [[] for _ in records]
    with tqdm(total=len(records), desc=f"decoding {loader.modality}", unit="album", disable=not progress) as bar:
        for chunk in data:
            for item in chunk:
                value = item["inputs"][loader.modality]
                # Half precision halves the memory of kept spectrograms; models read float32.
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    value = value.half()
                items[item["index"]], warnings[item["index"]] = value, item["warnings"]
            bar.update(len(chunk))
    return items, warnings
