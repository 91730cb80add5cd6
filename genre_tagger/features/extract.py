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


class ViewEmbeddingCollator:
    """collate_fn of the embedding loop on a CPU: collates a batch, then every view that lacks
    one of its albums embeds it, there (in a DataLoader worker, single-threaded: two workers
    keep two cores busy, as ``tag`` does). Adds ``"vectors": [[B, D_v] float | None per view]``.
    """

    def __init__(self, loader: ModalityLoader, views: list[Encoder], keys: list[str], missing: list[set[str]]):
        self.collate = AlbumCollator({loader.modality: loader})
        self.modality, self.views, self.keys, self.missing = loader.modality, views, keys, missing

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collate(items)
        rows = batch["index"].tolist()
        with torch.inference_mode():
            batch["vectors"] = [view(batch[self.modality]).float() if _lacks(self.keys, lacking, rows) else None
                                for view, lacking in zip(self.views, self.missing)]
        return batch


def _lacks(keys: list[str], lacking: set[str], rows: list[int]) -> bool:
    """Whether a view lacks (``lacking``: the keys it has no entry for) any album of ``rows``."""
    return any(keys[i] in lacking for i in rows)


def _batches(
    records: list[AlbumRecord], loader: ModalityLoader, batch_size: int, num_workers: int,
    collate: Any = None,
) -> Iterable[dict[str, Any]]:
    dataset = AlbumDataset(records, {loader.modality: loader})
    return DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate or AlbumCollator(dataset.loaders),
        persistent_workers=False,
    )


def _to_device(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: value.to(device, non_blocking=True) for name, value in inputs.items()}


def extract_features(
    records: list[AlbumRecord],
    loader: ModalityLoader,
    encoder: Encoder,
    cache_dir: Path | None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ModalityFeatures:
    """Embeddings ``[N, D]`` of ``records`` for the loader's modality, from the cache where possible.

    An encoder made of views (``MultiView``) is cached view by view, each under its own
    fingerprint (refitting a tf-idf view does not recompute the MiniLM view beside it), and
    the albums any view lacks are decoded once for all of them.
    """
    encoder.to(device)  # where it runs decides its runtime (ONNX Runtime on the CPU), part of the fingerprint
    view_parts = getattr(encoder, "cache_parts", None)
    parts = [encoder] if view_parts is None else view_parts()
    views = [(part, encoder_fingerprint(loader, part)) for part in parts]
    parts = _extract_views(records, loader, views, cache_dir, batch_size, num_workers, device, progress)
    if len(parts) == 1:
        return parts[0]
    return ModalityFeatures(np.concatenate([p.embeddings for p in parts], axis=1), parts[0].present,
                            parts[0].warnings)


def embed_records(
    encoders: dict[str, Encoder],
    loaders: dict[str, ModalityLoader],
    records: list[AlbumRecord],
    cache_dir: Path | None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, ModalityFeatures]:
    """The one embedding loop: ``{m: ModalityFeatures}`` (``embeddings [N, D_m]``,
    ``present [N]``) of ``records`` for every modality of ``encoders`` (frozen ones), through
    the cache; each encoder goes back to the CPU afterwards (GPU memory for the next one)."""
    features = {}
    for modality, encoder in encoders.items():
        features[modality] = extract_features(records, loaders[modality], encoder, cache_dir, batch_size=batch_size,
                                              num_workers=num_workers, device=device, progress=progress)
        encoder.cpu()
    return features


def _extract_views(
    records: list[AlbumRecord], loader: ModalityLoader, views: list[tuple[Encoder, str]], cache_dir: Path | None,
    batch_size: int, num_workers: int, device: str | torch.device, progress: bool,
) -> list[ModalityFeatures]:
    """One ``ModalityFeatures`` per (encoder, fingerprint); one decoding pass over the albums any lacks."""
    modality = loader.modality
    keys = [album_key(record, modality) for record in records]
    stores = [EmbeddingStore(Path(cache_dir) / f"{modality}-{fp}") if cache_dir else None for _, fp in views]
    cached = [store.load() if store else {} for store in stores]
    missing = [{key for key in keys if key not in entries} for entries in cached]
    todo = [position for position, key in enumerate(keys) if any(key in m for m in missing)]
    if todo:
        _embed_missing([records[p] for p in todo], [keys[p] for p in todo], loader, views, stores, cached, missing,
                       batch_size, num_workers, torch.device(device), progress)
    return [_assemble(keys, entries, view.out_dim) for (view, _), entries in zip(views, cached)]


def _embed_missing(records, keys, loader, views, stores, cached, missing, batch_size, num_workers, device,
                   progress) -> None:
    """Decode ``records`` once; each view embeds the albums it lacks (on a CPU, in the decoding
    workers: ``ViewEmbeddingCollator``); shards flushed as they fill."""
    modality = loader.modality
    encoders = [view.to(device).eval() for view, _ in views]
    collate = ViewEmbeddingCollator(loader, encoders, keys, missing) if device.type == "cpu" else None
    pending: list[list[tuple[str, np.ndarray, bool, list[str]]]] = [[] for _ in views]
    bar = tqdm(total=len(records), desc=f"embedding {modality}", unit="album", disable=not progress)
    with torch.inference_mode():
        for batch in _batches(records, loader, batch_size, num_workers, collate):
            rows = batch["index"].tolist()
            present = batch[modality]["present"].numpy()
            for number, encoder in enumerate(encoders):
                if not _lacks(keys, missing[number], rows):
                    continue
                if collate is not None:
                    vectors = batch["vectors"][number].numpy()
                else:
                    vectors = encoder(_to_device(batch[modality], device)).float().cpu().numpy()
                for offset, album_index in enumerate(rows):
                    entry = (vectors[offset], bool(present[offset]), batch["warnings"][offset])
                    cached[number][keys[album_index]] = entry
                    pending[number].append((keys[album_index], *entry))
                if stores[number] and len(pending[number]) >= SHARD_ALBUMS:
                    flush(stores[number], pending[number])
            bar.update(len(batch["ids"]))
    bar.close()
    for store, entries in zip(stores, pending):
        if store and entries:
            flush(store, entries)


def _assemble(keys: list[str], entries: dict, dim: int) -> ModalityFeatures:
    embeddings = np.zeros((len(keys), dim), dtype=np.float32)
    present = np.zeros(len(keys), dtype=bool)
    warnings: list[list[str]] = []
    for position, key in enumerate(keys):
        vector, is_present, messages = entries[key]
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
