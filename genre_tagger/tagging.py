"""Batch tagging (`genre-tagger tag`): a manifest in, one record per album out (CONTRACT §4).

How the data flows::

    iter_manifest (lazy) -> ManifestStream (IterableDataset; line i goes to shard i % n_shards)
      -> DataLoader workers decode (loaders from the checkpoint) and collate
      -> main process: predict_batch under inference_mode (GPU when present)
      -> RecordBuilder: thresholds, top-k, modalities used, warnings, extra fields
      -> JournalWriter: appended + flushed per batch, fsync every 256 records / 5 s

Memory stays flat as the catalog grows: nothing holds more than a few batches of albums;
what grows is only the set of finished ids (for resuming).

Guarantees (see ``genre_tagger.tagging_io`` for the on-disk side):

- **Order**: output records come in the order batches finish, not manifest order (with
  several workers, shards interleave; on resume, new albums follow the old ones).
- **Resume**: re-running with the same ``--output`` skips the ids already written; a torn
  last line (kill -9, power loss) is cut off first; csv/parquet resume from their journal
  ``OUT.partial.jsonl`` (or, once finished, from the output read back).
- **Per-album faults** never stop the run: loaders turn bad files into warnings; an album
  with nothing usable becomes ``"status": "error"`` with the cause. Manifest lines without
  a usable id (bad JSON, missing id, duplicate id) are reported on stderr and counted.
- **A worker process that dies** (a C-level crash in a decoder) does not end the run: every
  worker publishes the album it is decoding in shared memory; after the crash each of those
  albums is retried alone in a fresh one-worker DataLoader, the one that crashes again is
  written as an error record, and a fresh DataLoader goes on with the rest.
- **Ctrl-C / SIGTERM**: the current write completes, the journal is synced and closed, and
  a line on stderr says how to resume.

Scale-out: ``tag_catalog_distributed`` runs the same stream through Lightning's
``trainer.predict`` under DDP (one shard per rank and DataLoader worker, each rank appending
to ``OUT.rank{k}.partial.jsonl`` through a ``BasePredictionWriter``); rank 0 merges the
shards into the output at the end. Re-running resumes exactly like the single-process path.
"""

from __future__ import annotations

import multiprocessing
import re
import signal
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from genre_tagger.checkpoint import TaggerBundle, load_checkpoint
from genre_tagger.data.dataset import AlbumCollator, load_modality
from genre_tagger.data.manifest import iter_manifest
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord, ManifestIssue
from genre_tagger.errors import UserInputError
from genre_tagger.inference import PredictionBatch, pick_device, predict_batch
from genre_tagger.interrupts import sigterm_as_interrupt
from genre_tagger.tagging_io import (
    FIXED_COLUMNS,
    JournalState,
    JournalWriter,
    OutputLock,
    count_manifest_rows,
    finalize,
    iter_journal,
    journal_path,
    output_ids,
    rank_journal_path,
    rank_journals,
    repair_journal,
    say,
    seed_journal,
    status_kind,
    summarize,
)
from genre_tagger.tagging_io import output_format as resolve_format

__all__ = ["tag_catalog", "tag_catalog_distributed", "ManifestStream", "RecordBuilder"]

MODALITY_ORDER = ("audio", "image", "text")
MANIFEST_WORDS = {"audio": "audio", "image": "cover", "text": "text"}  # how users name them
SLOT_BYTES = 512  # shared-memory bytes per worker for "index<TAB>id" of the album in flight
MAX_CRASHES_WITHOUT_PROGRESS = 3
PROGRESS_SECONDS = 10.0
# A batch that takes this long means a decoder hangs inside C code (the loaders' own
# per-file limits are checked only between reads): the workers are replaced, and the
# albums in flight are retried alone, as after a crash.
BATCH_TIMEOUT_S = 300.0
PROGRESS_ALBUMS = 1000


# --------------------------------------------------------------------------- the stream


class InFlight:
    """Which album each DataLoader worker is decoding, in shared memory.

    A worker writes ``"index\\tid"`` into its slot before decoding an album and clears it
    after; when a worker dies, the main process reads the slots to find the suspects.
    """

    def __init__(self, n_workers: int):
        self.n_workers = max(1, n_workers)
        self._slots = multiprocessing.Array("c", self.n_workers * SLOT_BYTES, lock=False)

    def set(self, worker: int, index: int, album_id: str) -> None:
        data = f"{index}\t{album_id}".encode("utf-8")[: SLOT_BYTES - 1] + b"\0"
        start = worker * SLOT_BYTES
        self._slots[start : start + len(data)] = data

    def clear(self, worker: int) -> None:
        self._slots[worker * SLOT_BYTES] = b"\0"

    def albums(self) -> list[tuple[int, str]]:
        """``(manifest index, id)`` of every album a worker had started and not finished."""
        found = []
        for worker in range(self.n_workers):
            raw = bytes(self._slots[worker * SLOT_BYTES : (worker + 1) * SLOT_BYTES]).split(b"\0")[0]
            if raw:
                index, _, album_id = raw.decode("utf-8", errors="replace").partition("\t")
                found.append((int(index), album_id))
        return found


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
            "declared": [m for m in MODALITY_ORDER if record.has_modality(m)],
        }


class TaggingCollator:
    """Picklable collate_fn: albums through ``AlbumCollator``, notes and per-album metadata aside.

    Batch: ``{"albums": AlbumCollator batch | None, "meta": [{"id", "line", "extra", "declared"}],
    "notes": [str]}``.
    """

    def __init__(self, loaders: dict[str, ModalityLoader]):
        self.albums = AlbumCollator(loaders)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        albums = [item for item in items if "note" not in item]
        return {
            "albums": self.albums(albums) if albums else None,
            "meta": [{key: item[key] for key in ("id", "line", "extra", "declared")} for item in albums],
            "notes": [message for item in items if "note" in item for message in item["note"]],
        }


# --------------------------------------------------------------------------- output records


@dataclass
class RecordBuilder:
    """Scores of a batch -> output records (CONTRACT §4).

    ``thresholds [L]``: a label is in ``genres`` when its score >= its threshold (as in the
    metrics). ``scores`` holds the ``top_k`` best labels (every label with ``all_scores``),
    best first, rounded to 4 decimals. Extra manifest fields follow the fixed ones; one that
    would overwrite a fixed field is written as ``manifest_<name>``.
    """

    labels: list[str]
    thresholds: np.ndarray
    modalities: list[str]
    top_k: int = 10
    all_scores: bool = False

    def records(self, meta: list[dict[str, Any]], prediction: PredictionBatch) -> list[dict[str, Any]]:
        out = []
        for row, album in enumerate(meta):
            used = [m for m in self.modalities if bool(prediction.present[m][row])]
            out.append(self.album(album, prediction.scores[row], used, prediction.warnings[row]))
        return out

    def album(self, meta: dict[str, Any], scores: np.ndarray, used: list[str], warnings: list[str]) -> dict[str, Any]:
        record: dict[str, Any] = {"id": meta["id"]}
        if not used:
            record.update(status="error", error=self.nothing_usable(meta["declared"], warnings),
                          modalities=[], warnings=list(warnings))
        else:
            order = np.argsort(-scores, kind="stable")
            keep = order if self.all_scores else order[: max(self.top_k, 0)]
            record.update(
                status="ok",
                genres=[self.labels[j] for j in order if scores[j] >= self.thresholds[j]],
                scores={self.labels[j]: round(float(scores[j]), 4) for j in keep},
                modalities=used,
                warnings=list(warnings),
            )
        for key, value in meta["extra"].items():
            record[f"manifest_{key}" if key in FIXED_COLUMNS else key] = value
        return record

    def nothing_usable(self, declared: list[str], warnings: list[str]) -> str:
        """E.g. "no usable modality: audio: cannot decode 'a.mp3': ...; album has no cover or text"."""
        causes = list(warnings)
        missing = [MANIFEST_WORDS[m] for m in self.modalities if m not in declared]
        if missing:
            causes.append("album has no " + _or_list(missing))
        ignored = [MANIFEST_WORDS[m] for m in declared if m not in self.modalities]
        if ignored:
            causes.append(f"this model does not use {_or_list(ignored)}")
        return "no usable modality: " + ("; ".join(causes) or "nothing to tag from")


def _or_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def crash_record(album_id: str, record: AlbumRecord | None, reason: str) -> dict[str, Any]:
    """The error record of an album whose decoding killed a worker process twice."""
    where = f"manifest line {record.line}: " if record is not None else ""
    out = {"id": album_id, "status": "error",
           "error": f"{where}decoding this album crashed a DataLoader worker process ({reason}); album skipped",
           "modalities": [], "warnings": []}
    for key, value in (record.extra if record is not None else {}).items():
        out[f"manifest_{key}" if key in FIXED_COLUMNS else key] = value
    return out


def _record_at(manifest: str | Path, index: int) -> AlbumRecord | None:
    for position, (record, _) in enumerate(iter_manifest(manifest)):
        if position == index:
            return record
    return None


# --------------------------------------------------------------------------- progress


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """A tqdm bar on an interactive stderr; otherwise a plain line every ~10 s or 1000 albums:
    ``tagged 1200/5000 albums (24.3/s), eta 2m36s``. Counts manifest lines handled."""

    def __init__(self, total: int | None, already: int, enabled: bool):
        self.total, self.position, self.done_now = total, already, 0
        self.start = self._last_time = time.monotonic()
        self._last_count = 0
        self.bar = None
        self.plain = False
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=already, unit="album", desc="tagging", file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.05)
        else:
            self.plain = enabled

    def update(self, n: int) -> None:
        if n <= 0:
            return
        self.position += n
        self.done_now += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.plain:
            now = time.monotonic()
            if now - self._last_time >= PROGRESS_SECONDS or self.done_now - self._last_count >= PROGRESS_ALBUMS:
                self._last_time, self._last_count = now, self.done_now
                say(self.line())

    def line(self) -> str:
        rate = self.done_now / max(time.monotonic() - self.start, 1e-9)
        total = max(self.total or 0, self.position)
        text = f"tagged {self.position}/{total if self.total is not None else '?'} albums ({rate:.1f}/s)"
        if self.total is not None and rate > 0:
            text += f", eta {_duration((total - self.position) / rate)}"
        return text

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- signals


@contextmanager
def _signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)) -> Iterator[None]:
    """Hold back Python-level signal handlers (Ctrl-C; torch's SIGCHLD handler, which raises
    when a worker dies) while a write and its bookkeeping run, then replay them: so an
    album is never on disk without being marked done, or the other way round."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, Any]] = []
    previous = {}
    for signum in signums:
        previous[signum] = signal.signal(signum, lambda n, f: pending.append((n, f)))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in pending:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL and signum != signal.SIGCHLD:
                signal.raise_signal(signum)


def _is_worker_failure(err: BaseException) -> bool:
    text = str(err)
    return isinstance(err, RuntimeError) and ("DataLoader worker" in text or "DataLoader timed out" in text)


def _short(err: BaseException) -> str:
    """First sentence of an error, without torch's worker pids (they mean nothing later)."""
    text = re.sub(r"\s*\(pid(\(s\))? [\d, ]+\)", "", " ".join(str(err).split()))
    return text.split(". ")[0].rstrip(".") or type(err).__name__


# --------------------------------------------------------------------------- the single-process run


@dataclass
class TaggingRun:
    """One ``tag`` run: streams the manifest, writes records, survives dead workers."""

    bundle: TaggerBundle
    manifest: Path
    writer: JournalWriter
    state: JournalState
    builder: RecordBuilder
    device: torch.device
    batch_size: int
    num_workers: int
    progress: Progress
    new: Counter = field(default_factory=Counter)
    skipped_lines: int = 0
    worker_crashes: int = 0
    reported: set[str] = field(default_factory=set)  # notes already said (a restarted stream repeats them)

    def run(self) -> None:
        """Stream until the manifest is done; after a worker crash, go on with a fresh DataLoader."""
        stalled = 0
        while True:
            in_flight = InFlight(self.num_workers) if self.num_workers > 0 else None
            stream = ManifestStream(self.manifest, self.bundle.loaders, skip=self.state.ids, in_flight=in_flight)
            written = self.state.total
            try:
                self._consume_all(self._data_loader(stream, self.num_workers))
                return
            except RuntimeError as err:
                if in_flight is None or not _is_worker_failure(err):
                    raise
                self._recover(err, in_flight)
            stalled = 0 if self.state.total > written else stalled + 1
            if stalled >= MAX_CRASHES_WITHOUT_PROGRESS:
                raise RuntimeError(f"DataLoader workers keep dying without any album finished "
                                   f"({self.worker_crashes} crashes); try --num-workers 0 to see the error")

    def _data_loader(self, stream: ManifestStream, num_workers: int, batch_size: int | None = None) -> DataLoader:
        return DataLoader(stream, batch_size=batch_size or self.batch_size, num_workers=num_workers,
                          collate_fn=TaggingCollator(self.bundle.loaders),
                          pin_memory=self.device.type == "cuda", timeout=BATCH_TIMEOUT_S if num_workers else 0)

    def _consume_all(self, data: DataLoader) -> None:
        batches = iter(data)
        try:
            for batch in batches:
                self.consume(batch)
        finally:
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:  # stop workers now, not whenever the iterator is collected
                shutdown()

    def consume(self, batch: dict[str, Any]) -> None:
        """Report a batch's notes, score its albums and append their records."""
        notes = [note for note in batch["notes"] if note not in self.reported]
        self.reported.update(notes)
        for note in notes:
            say(f"skipped: {note}")
        self.skipped_lines += len(notes)
        records = []
        if batch["albums"] is not None:
            prediction = predict_batch(self.bundle, batch["albums"], self.device)
            records = [r for r in self.builder.records(batch["meta"], prediction) if r["id"] not in self.state.ids]
        self.write(records)
        self.progress.update(len(records) + len(notes))

    def write(self, records: list[dict[str, Any]]) -> None:
        with _signals_deferred():
            self.writer.write(records)
            for record in records:
                self.state.add(record)
                self.new[status_kind(record)] += 1

    def _recover(self, err: RuntimeError, in_flight: InFlight) -> None:
        """Retry each album that was being decoded alone; one that crashes again is an error."""
        self.worker_crashes += 1
        suspects = [(index, album_id) for index, album_id in in_flight.albums() if album_id not in self.state.ids]
        say(f"warning: {_short(err)}; retrying the {len(suspects)} album(s) being decoded "
            f"one at a time, then going on with a fresh DataLoader")
        for index, album_id in suspects:
            stream = ManifestStream(self.manifest, self.bundle.loaders, only={album_id}, stop_after=index)
            try:
                self._consume_all(self._data_loader(stream, num_workers=1, batch_size=1))
            except RuntimeError as again:
                if not _is_worker_failure(again):
                    raise
                self.worker_crashes += 1
                # torch words a lone worker's death "exited unexpectedly"; the first report may name the signal
                reason = _short(again) if "signal" in str(again) or "signal" not in str(err) else _short(err)
                record = crash_record(album_id, _record_at(self.manifest, index), reason)
                say(f"error: album {album_id}: {record['error']}")
                self.write([record])
                self.progress.update(1)


def _check_options(top_k: int, threshold: float | None, batch_size: int, num_workers: int) -> None:
    if top_k < 0:
        raise UserInputError(f"--top-k must be >= 0, got {top_k}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UserInputError(f"--threshold must be between 0 and 1, got {threshold}")
    if batch_size < 1:
        raise UserInputError(f"--batch-size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise UserInputError(f"--num-workers must be >= 0, got {num_workers}")


def _builder(bundle: TaggerBundle, top_k: int, all_scores: bool, threshold: float | None) -> RecordBuilder:
    thresholds = (np.full(len(bundle.labels), threshold, dtype=np.float64) if threshold is not None
                  else np.asarray(bundle.thresholds, dtype=np.float64))
    return RecordBuilder(list(bundle.labels), thresholds, bundle.modalities, top_k, all_scores)


def _summary(state: JournalState, output: Path, fmt: str, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"total": state.total, "ok": state.counts["ok"], "warning": state.counts["warning"],
            "error": state.counts["error"], "output": str(output), "format": fmt,
            "seconds": round(seconds, 3), **extra}


def _final_line(summary: dict[str, Any]) -> str:
    return (f"tagged {summary['total']} albums: {summary['ok']} ok, {summary['warning']} with warnings, "
            f"{summary['error']} errors -> {summary['output']} ({summary['seconds']:.1f} s)")


def tag_catalog(
    checkpoint: str | Path,
    manifest: str | Path,
    output: str | Path,
    output_format: str | None = None,
    top_k: int = 10,
    all_scores: bool = False,
    threshold: float | None = None,
    batch_size: int = 32,
    num_workers: int = 2,
    device: str = "auto",
    progress: bool = True,
    devices: int | str | None = None,
    strategy: str = "ddp",
    num_nodes: int = 1,
) -> dict[str, Any]:
    """Tag every album of ``manifest`` into ``output`` (resuming it); see the module docstring.

    ``output_format``: jsonl / csv / parquet (None: from the extension, else jsonl).
    ``threshold``: one threshold for every label instead of the calibrated ones.
    ``devices`` / ``strategy`` / ``num_nodes``: when ``devices`` is given (or several
    nodes), the run goes through ``tag_catalog_distributed``.

    Returns ``{"total", "ok", "warning", "error"}`` over the whole output (albums written
    by earlier runs included), plus ``new`` (this run's counts), ``resumed``,
    ``skipped_lines`` (manifest lines without a usable id), ``worker_crashes``,
    ``output``, ``format``, ``seconds``. Prints the final line on stdout.
    """
    if devices is not None or num_nodes > 1:
        return tag_catalog_distributed(
            checkpoint, manifest, output, output_format=output_format, top_k=top_k, all_scores=all_scores,
            threshold=threshold, batch_size=batch_size, num_workers=num_workers, device=device,
            devices=devices if devices is not None else "auto", strategy=strategy, num_nodes=num_nodes,
            progress=progress)
    _check_options(top_k, threshold, batch_size, num_workers)
    started = time.monotonic()
    fmt = resolve_format(output, output_format)
    output, manifest = Path(output), Path(manifest)
    iter_manifest(manifest)  # a missing or unreadable manifest is a usage error, before any work
    if output.is_dir():
        raise UserInputError(f"--output {output} is a folder; give a file name (e.g. {output / 'tags.jsonl'})")
    bundle = load_checkpoint(checkpoint)
    torch_device = pick_device(device)
    bundle.model.to(torch_device).eval()
    journal = journal_path(output, fmt)
    with OutputLock(output), sigterm_as_interrupt():
        seed_journal(output, fmt, journal)
        state = repair_journal(journal)
        resumed = state.total
        if resumed:
            say(f"resuming {output}: {resumed} albums already tagged are skipped")
        writer = JournalWriter(journal)
        run = TaggingRun(bundle, manifest, writer, state, _builder(bundle, top_k, all_scores, threshold),
                         torch_device, batch_size, num_workers,
                         Progress(count_manifest_rows(manifest), resumed, progress))
        try:
            run.run()
        except KeyboardInterrupt:
            _close_quietly(run)
            say(f"interrupted: {journal} holds {state.total} albums so far; run the same command again "
                "to tag the rest (it resumes where it stopped)")
            raise
        except BaseException:
            _close_quietly(run)
            raise
        _close_quietly(run)
        finalize(journal, output, fmt)
    if run.skipped_lines:
        say(f"{run.skipped_lines} manifest line(s) had no usable id and were skipped (listed above)")
    summary = _summary(state, output, fmt, time.monotonic() - started, new=dict(run.new), resumed=resumed,
                       skipped_lines=run.skipped_lines, worker_crashes=run.worker_crashes)
    print(_final_line(summary), flush=True)
    return summary


def _close_quietly(run: TaggingRun) -> None:
    run.progress.close()
    run.writer.close()


# --------------------------------------------------------------------------- distributed (Lightning DDP)


_LIGHTNING_CLASSES = ("TaggingModule", "CatalogData", "ShardWriter")


def __getattr__(name: str) -> Any:
    """The Lightning classes are built on first access: importing Lightning costs seconds that
    the single-process path should not pay. They become real module attributes (so pickling
    them for ``ddp_spawn`` works by name, like any module-level class)."""
    if name in _LIGHTNING_CLASSES:
        for cls in _make_distributed_parts():
            cls.__qualname__ = cls.__name__
            globals()[cls.__name__] = cls
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _make_distributed_parts() -> tuple[type, type, type]:
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import BasePredictionWriter

    class TaggingModule(pl.LightningModule):
        """``predict_step``: one collated batch -> ``{"records": [...], "notes": [...]}``."""

        def __init__(self, bundle: TaggerBundle, builder: RecordBuilder):
            super().__init__()
            self.model = bundle.model
            self.bundle = bundle
            self.builder = builder

        def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> dict[str, Any]:
            records = []
            if batch["albums"] is not None:
                prediction = predict_batch(self.bundle, batch["albums"], self.device)
                records = self.builder.records(batch["meta"], prediction)
            return {"records": records, "notes": batch["notes"]}

    class CatalogData(pl.LightningDataModule):
        """Per rank: repair its own shard file, collect finished ids, stream its shard."""

        def __init__(self, manifest: Path, output: Path, fmt: str, loaders: dict, batch_size: int, num_workers: int):
            super().__init__()
            self.manifest, self.output, self.fmt = manifest, output, fmt
            self.loaders, self.batch_size, self.num_workers = loaders, batch_size, num_workers

        def predict_dataloader(self) -> DataLoader:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            repair_journal(rank_journal_path(self.output, rank))
            done = _finished_ids(self.output, self.fmt)
            stream = ManifestStream(self.manifest, self.loaders, skip=done, rank=rank, world=world)
            return DataLoader(stream, batch_size=self.batch_size, num_workers=self.num_workers,
                              collate_fn=TaggingCollator(self.loaders))

    class ShardWriter(BasePredictionWriter):
        """Appends each rank's records to ``OUT.rank{k}.partial.jsonl``; rank 0 merges at the end."""

        def __init__(self, output: Path, fmt: str):
            super().__init__(write_interval="batch")
            self.output, self.fmt = output, fmt
            self.writer: JournalWriter | None = None

        def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
            self.writer = JournalWriter(rank_journal_path(self.output, trainer.global_rank))

        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                               dataloader_idx=0) -> None:
            for note in prediction["notes"]:
                say(f"skipped: {note}")
            self.writer.write(prediction["records"])

        def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
            self.writer.close()
            trainer.strategy.barrier("genre_tagger_merge")
            if trainer.global_rank == 0:
                merge_shards(self.output, self.fmt)

    return TaggingModule, CatalogData, ShardWriter


def _finished_ids(output: Path, fmt: str) -> set[str]:
    """Ids already written anywhere: the journal (or the finished output) and every rank shard.
    Read tolerantly: other ranks may be appending to their shards meanwhile."""
    journal = journal_path(output, fmt)
    done = set(r["id"] for r in iter_journal(journal)) if journal.exists() else output_ids(output, fmt)
    for shard in rank_journals(output):
        done.update(r["id"] for r in iter_journal(shard))
    return done


def merge_shards(output: str | Path, fmt: str) -> JournalState:
    """Fold every ``OUT.rank{k}.partial.jsonl`` into the journal (deduplicated), delete the
    shards, and finish the output. Safe to repeat after a crash at any step."""
    output = Path(output)
    journal = journal_path(output, fmt)
    with OutputLock(output):
        seed_journal(output, fmt, journal)
        state = repair_journal(journal)
        writer = JournalWriter(journal)
        try:
            for shard in rank_journals(output):
                batch = []
                for record in iter_journal(shard):
                    if record["id"] not in state.ids:
                        state.add(record)
                        batch.append(record)
                    if len(batch) >= 1000:
                        writer.write(batch)
                        batch = []
                writer.write(batch)
        finally:
            writer.close()
        for shard in rank_journals(output):
            shard.unlink()
        finalize(journal, output, fmt)
    return state


def tag_catalog_distributed(
    checkpoint: str | Path,
    manifest: str | Path,
    output: str | Path,
    output_format: str | None = None,
    top_k: int = 10,
    all_scores: bool = False,
    threshold: float | None = None,
    batch_size: int = 32,
    num_workers: int = 2,
    device: str = "auto",
    devices: int | str = "auto",
    strategy: str = "ddp",
    num_nodes: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Tag through ``trainer.predict`` on several devices / nodes (Lightning DDP).

    Each rank streams its shards of the manifest (shard ``rank * workers + worker`` of
    ``world * workers``, see ``ManifestStream``) and appends to its own
    ``OUT.rank{k}.partial.jsonl``; after a barrier rank 0 merges the shards into ``output``.
    Launch it like any Lightning DDP job (``strategy="ddp"`` under torchrun / SLURM, or
    ``"ddp_spawn"`` from one process). Resuming works as in ``tag_catalog``; a dead worker or
    rank ends the run (re-run to resume). Returns the summary on rank 0 (and in the launching
    process of ``ddp_spawn``); other ranks return zero counts with their ``rank``.
    """
    import pytorch_lightning as pl

    _check_options(top_k, threshold, batch_size, num_workers)
    started = time.monotonic()
    fmt = resolve_format(output, output_format)
    output, manifest = Path(output), Path(manifest)
    iter_manifest(manifest)
    bundle = load_checkpoint(checkpoint)
    module_globals = sys.modules[__name__]
    TaggingModule, CatalogData, ShardWriter = (getattr(module_globals, n) for n in _LIGHTNING_CLASSES)
    accelerator = "cpu" if device == "cpu" else "gpu" if device.startswith("cuda") else "auto"
    trainer = pl.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, num_nodes=num_nodes,
                         logger=False, enable_checkpointing=False, enable_model_summary=False,
                         enable_progress_bar=progress, use_distributed_sampler=False,
                         callbacks=[ShardWriter(output, fmt)])
    module = TaggingModule(bundle, _builder(bundle, top_k, all_scores, threshold))
    data = CatalogData(manifest, output, fmt, bundle.loaders, batch_size, num_workers)
    trainer.predict(module, datamodule=data, return_predictions=False)
    if trainer.global_rank != 0:  # rank 0 merges and reports; the others only say who they were
        return {"total": 0, "ok": 0, "warning": 0, "error": 0, "rank": trainer.global_rank}
    state = summarize(output, fmt)
    summary = _summary(state, output, fmt, time.monotonic() - started, world_size=trainer.world_size)
    print(_final_line(summary), flush=True)
    return summary
