"""The single-process ``tag`` run: stream, decode in workers, score, write, survive crashes."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.data.manifest import iter_manifest
from genre_tagger.errors import UserInputError
from genre_tagger.interrupts import sigterm_as_interrupt
from genre_tagger.prediction import BatchEmbedder, predict_batch
from genre_tagger.runs import pick_device
from genre_tagger.tagging.crashes import (
    MAX_CRASHES_WITHOUT_PROGRESS,
    WORKER_FAILURES,
    InFlight,
    is_worker_failure,
    short_reason,
    signals_deferred,
)
from genre_tagger.tagging.formats import finalize, seed_journal
from genre_tagger.tagging.formats import output_format as resolve_format
from genre_tagger.tagging.journal import JournalState, JournalWriter, OutputLock, journal_path, repair_journal
from genre_tagger.runs import say
from genre_tagger.tagging.progress import Progress, count_manifest_rows, final_line, summary
from genre_tagger.tagging.records import RecordBuilder, TagOptions, crash_record, status_kind
from genre_tagger.tagging.stream import ManifestStream, TaggingCollator, record_at

# A batch that takes this long means a decoder hangs inside C code (the loaders' own
# per-file limits are checked only between reads): the workers are replaced, and the
# albums in flight are retried alone, as after a crash.
BATCH_TIMEOUT_S = 300.0


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
            except WORKER_FAILURES as err:
                if in_flight is None or not is_worker_failure(err):
                    raise
                self._recover(err, in_flight)
            stalled = 0 if self.state.total > written else stalled + 1
            if stalled >= MAX_CRASHES_WITHOUT_PROGRESS:
                raise RuntimeError(f"DataLoader workers keep dying without any album finished "
                                   f"({self.worker_crashes} crashes); try --num-workers 0 to see the error")

    def _data_loader(self, stream: ManifestStream, num_workers: int, batch_size: int | None = None) -> DataLoader:
        # On a CPU the workers run the encoders too (BatchEmbedder); a GPU runs them here.
        embedder = BatchEmbedder(self.bundle.model) if self.device.type == "cpu" else None
        return DataLoader(stream, batch_size=batch_size or self.batch_size, num_workers=num_workers,
                          collate_fn=TaggingCollator(self.bundle.loaders, embedder),
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
            say(f"skipped: {note}", every_rank=True)
        self.skipped_lines += len(notes)
        records = []
        if batch["albums"] is not None:
            prediction = predict_batch(self.bundle.model, batch["albums"], self.device, explain=self.builder.explain)
            records = [r for r in self.builder.records(batch["meta"], prediction) if r["id"] not in self.state.ids]
        self.write(records)
        self.progress.update(len(records) + len(notes))

    def write(self, records: list[dict[str, Any]]) -> None:
        with signals_deferred():
            self.writer.write(records)
            for record in records:
                self.state.add(record)
                self.new[status_kind(record)] += 1

    def _recover(self, err: Exception, in_flight: InFlight) -> None:
        """Retry each album that was being decoded alone; one that crashes again is an error."""
        self.worker_crashes += 1
        suspects = [(index, album_id) for index, album_id in in_flight.albums() if album_id not in self.state.ids]
        say(f"warning: {short_reason(err)}; retrying the {len(suspects)} album(s) being decoded "
            f"one at a time, then going on with a fresh DataLoader")
        for index, album_id in suspects:
            stream = ManifestStream(self.manifest, self.bundle.loaders, only={album_id}, stop_after=index)
            try:
                self._consume_all(self._data_loader(stream, num_workers=1, batch_size=1))
            except WORKER_FAILURES as again:
                if not is_worker_failure(again):
                    raise
                self.worker_crashes += 1
                # torch words a lone worker's death "exited unexpectedly"; the first report may name the signal
                reason = short_reason(again) if "signal" in str(again) or "signal" not in str(err) else short_reason(err)
                record = crash_record(album_id, record_at(self.manifest, index), reason)
                say(f"error: album {album_id}: {record['error']}")
                self.write([record])
                self.progress.update(1)


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
    explain: bool = False,
) -> dict[str, Any]:
    """Tag every album of ``manifest`` into ``output`` (resuming it); see the module docstring.

    ``output_format``: jsonl / csv / parquet (None: from the extension, else jsonl).
    ``threshold``: one threshold for every label instead of the calibrated ones.
    ``explain``: each ok record gets ``evidence`` (``RecordBuilder``): its genres' scores from
    each modality alone and without each (the encoders still run once per album).
    ``devices`` / ``strategy`` / ``num_nodes``: when ``devices`` is given (or several
    nodes), the run goes through ``tag_catalog_distributed``.

    Returns ``{"total", "ok", "warning", "error"}`` over the whole output (albums written
    by earlier runs included), plus ``new`` (this run's counts), ``resumed``,
    ``skipped_lines`` (manifest lines without a usable id), ``worker_crashes``,
    ``output``, ``format``, ``seconds``. Prints the final line on stdout.
    """
    opts = TagOptions(output_format, top_k, all_scores, threshold, batch_size, num_workers, device, progress, explain)
    if devices is not None or num_nodes > 1:
        from genre_tagger.tagging.distributed import tag_catalog_distributed  # Lightning: seconds to import

        return tag_catalog_distributed(checkpoint, manifest, output, devices=devices if devices is not None else "auto",
                                       strategy=strategy, num_nodes=num_nodes, **asdict(opts))
    started = time.monotonic()
    fmt = resolve_format(output, output_format)
    output, manifest = Path(output), Path(manifest)
    iter_manifest(manifest)  # a missing or unreadable manifest is a usage error, before any work
    if output.is_dir():
        raise UserInputError(f"--output {output} is a folder; give a file name (e.g. {output / 'tags.jsonl'})")
    bundle = load_checkpoint(checkpoint)
    torch_device = pick_device(device)
    bundle.model.to(torch_device).eval()
    builder = opts.builder(bundle)
    with OutputLock(output), sigterm_as_interrupt():
        state, run, resumed = _run_journaled(bundle, manifest, output, fmt, builder, torch_device, batch_size,
                                             num_workers, progress)
    if run.skipped_lines:
        say(f"{run.skipped_lines} manifest line(s) had no usable id and were skipped (listed above)")
    result = summary(state, output, fmt, time.monotonic() - started, new=dict(run.new), resumed=resumed,
                     skipped_lines=run.skipped_lines, worker_crashes=run.worker_crashes)
    print(final_line(result), flush=True)
    return result


def _run_journaled(bundle: TaggerBundle, manifest: Path, output: Path, fmt: str, builder: RecordBuilder,
                   device: torch.device, batch_size: int, num_workers: int,
                   progress: bool) -> tuple[JournalState, TaggingRun, int]:
    """Under the output lock: repair and resume the journal, run, close it, finish the output."""
    journal = journal_path(output, fmt)
    seed_journal(output, fmt, journal)
    state = repair_journal(journal)
    resumed = state.total
    if resumed:
        say(f"resuming {output}: {resumed} albums already tagged are skipped")
    run = TaggingRun(bundle, manifest, JournalWriter(journal), state, builder, device, batch_size, num_workers,
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
    return state, run, resumed


def _close_quietly(run: TaggingRun) -> None:
    run.progress.close()
    run.writer.close()
