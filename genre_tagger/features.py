"""Per-modality embeddings of frozen encoders, computed once and cached on disk.

A cache folder per (modality, encoder fingerprint) holds append-only ``.npz`` shards of
``keys [n]``, ``embeddings [n, D]`` float32, ``present [n]`` bool and ``warnings [n]``
(JSON lists). The fingerprint covers the loader's and the encoder's configuration (and
the weights when they are not a package's), the album key covers the album's id and
its inputs (paths with size and mtime, or the inline texts): changing either makes the
old entries stale, so they are simply not found. Shards are written every few hundred
albums, so an interrupted extraction resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre_tagger.data.dataset import AlbumCollator, AlbumDataset
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.models.encoders.base import Encoder

SHARD_ALBUMS = 512


@dataclass
class ModalityFeatures:
    """One modality over N albums: ``embeddings [N, D]``, ``present [N]``, warnings per album."""

    embeddings: np.ndarray
    present: np.ndarray
    warnings: list[list[str]]


def _digest(payload: Any) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def weights_digest(module: torch.nn.Module) -> str:
    """Hash of a module's parameters and buffers (for encoders trained in this run)."""
    hasher = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        hasher.update(name.encode())
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def encoder_fingerprint(loader: ModalityLoader, encoder_spec: dict, encoder: Encoder) -> str:
    """What makes an embedding reproducible: preprocessing, encoder config, own weights."""
    payload = {"loader": loader.spec(), "encoder": encoder_spec}
    if not encoder.weights_from_package:
        payload["weights"] = weights_digest(encoder)
    return _digest(payload)[:16]


def _file_stamp(path: Path) -> list:
    try:
        stat = os.stat(path)
        return [str(path), stat.st_size, stat.st_mtime_ns]
    except OSError:
        return [str(path), None]


def album_key(record: AlbumRecord, modality: str) -> str:
    """Hash of an album's id and its inputs for one modality."""
    if modality == "audio":
        inputs: Any = [_file_stamp(path) for path in record.audio]
    elif modality == "image":
        inputs = _file_stamp(record.cover) if record.cover else None
    else:
        inputs = [record.texts, [_file_stamp(path) for path in record.text_files]]
    return _digest([record.id, modality, inputs])


class EmbeddingStore:
    """The shard folder of one (modality, fingerprint)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def load(self) -> dict[str, tuple[np.ndarray, bool, list[str]]]:
        entries: dict[str, tuple[np.ndarray, bool, list[str]]] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    for key, vector, present, warnings in zip(
                        data["keys"], data["embeddings"], data["present"], data["warnings"]
                    ):
                        entries[str(key)] = (vector, bool(present), json.loads(str(warnings)))
            except (OSError, ValueError, KeyError):
                continue  # a torn shard from a crash: its albums are simply recomputed
        return entries

    def append(self, keys: list[str], embeddings: np.ndarray, present: np.ndarray, warnings: list[list[str]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"shard-{uuid.uuid4().hex}.npz"
        partial = final.with_suffix(".tmp.npz")
        np.savez(
            partial, keys=np.array(keys), embeddings=embeddings.astype(np.float32),
            present=present.astype(bool), warnings=np.array([json.dumps(w) for w in warnings]),
        )
        partial.replace(final)  # atomic: a shard is either whole or absent


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
    """Embeddings of ``records`` for the loader's modality, from the cache where possible."""
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
                    _flush(store, pending)
        bar.close()
        if store and pending:
            _flush(store, pending)
    dim = encoder.out_dim
    embeddings = np.zeros((len(records), dim), dtype=np.float32)
    present = np.zeros(len(records), dtype=bool)
    warnings: list[list[str]] = []
    for position, key in enumerate(keys):
        vector, is_present, messages = cached[key]
        embeddings[position], present[position] = vector, is_present
        warnings.append(messages)
    return ModalityFeatures(embeddings, present, warnings)


def _flush(store: EmbeddingStore, pending: list) -> None:
    keys, vectors, present, warnings = zip(*pending)
    store.append(list(keys), np.stack(vectors), np.array(present), list(warnings))
    pending.clear()


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
