"""The manifest as a stream of decoded albums, sharded over ranks and DataLoader workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from torch.utils.data import IterableDataset, get_worker_info

from genre_tagger.data.dataset import AlbumCollator, load_modality
from genre_tagger.data.manifest import iter_manifest
from genre_tagger.data.modalities import declared_modalities
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord, ManifestIssue
from genre_tagger.tagging.crashes import InFlight


def _issue_text(issue: ManifestIssue) -> str:
    return f"manifest line {issue.line}, field '{issue.field}': {issue.message}"


class ManifestStream(IterableDataset):
    """The albums of a manifest, read lazily and decoded where iterated (DataLoader workers).

    Stream position ``i`` (0-based over the manifest's data lines) belongs to shard
    ``i % (world * workers)``; shard = ``rank * workers + worker``. Yields per album
    ``{"index", "id", "inputs": {m: item | None}, "warnings", "line", "extra", "declared"}``
    (``declared``: modalities the manifest names for it) and, for a line with no usable id,
    ``{"index", "note": [messages]}``. Albums whose id is in ``skip`` are not decoded; with
    ``only``, just those ids are (no notes), and iteration stops after index ``stop_after``.
    """

    def __init__(
        self,
        manifest: str | Path,
        loaders: dict[str, ModalityLoader],
        skip: set[str] | frozenset[str] = frozenset(),
        only: set[str] | None = None,
        stop_after: int | None = None,
        rank: int = 0,
        world: int = 1,
        in_flight: InFlight | None = None,
    ):
        super().__init__()
        self.manifest = str(manifest)
        self.loaders = loaders
        self.skip = frozenset(skip)
        self.only = None if only is None else frozenset(only)
        self.stop_after = stop_after
        self.rank, self.world = rank, world
        self.in_flight = in_flight

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        shard, n_shards = self.rank * n_workers + worker, self.world * n_workers
        for index, (record, issues) in enumerate(iter_manifest(self.manifest)):
            if self.stop_after is not None and index > self.stop_after:
                return
            if index % n_shards != shard:
                continue
            if record is None:
                if self.only is None:
                    yield {"index": index, "note": [issue.format(self.manifest) for issue in issues]}
                continue
            if record.id in self.skip or (self.only is not None and record.id not in self.only):
                continue
            yield self._load(index, record, issues, worker)

    def _load(self, index: int, record: AlbumRecord, issues: list[ManifestIssue], worker: int) -> dict[str, Any]:
        if self.in_flight is not None:
            self.in_flight.set(worker, index, record.id)
        inputs, warnings = {}, [_issue_text(issue) for issue in issues]
        for name, loader in self.loaders.items():
            inputs[name], messages = load_modality(loader, record, training=False)
            warnings.extend(messages)
        if self.in_flight is not None:
            self.in_flight.clear(worker)
        return {
            "index": index, "id": record.id, "inputs": inputs, "warnings": warnings,
            "line": record.line, "extra": record.extra,
            "declared": declared_modalities(record),
        }


class TaggingCollator:
    """Picklable collate_fn: albums through ``AlbumCollator``, notes and per-album metadata aside.

    Batch: ``{"albums": AlbumCollator batch | None, "meta": [{"id", "line", "extra", "declared"}],
    "notes": [str]}``. With an ``embedder`` (``prediction.BatchEmbedder``) the albums' batch is
    an embedding batch: the encoders run here, in the DataLoader worker.
    """

    def __init__(self, loaders: dict[str, ModalityLoader], embedder: Callable[[dict], dict] | None = None):
        self.albums = AlbumCollator(loaders)
        self.embedder = embedder

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        albums = [item for item in items if "note" not in item]
        batch = self.albums(albums) if albums else None
        if batch is not None and self.embedder is not None:
            batch = self.embedder(batch)
        return {
            "albums": batch,
            "meta": [{key: item[key] for key in ("id", "line", "extra", "declared")} for item in albums],
            "notes": [message for item in items if "note" in item for message in item["note"]],
        }


def record_at(manifest: str | Path, index: int) -> AlbumRecord | None:
    for position, (record, _) in enumerate(iter_manifest(manifest)):
        if position == index:
            return record
    return None
