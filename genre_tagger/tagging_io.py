"""Tagging output on disk: the append-only journal, its crash repair, and the final formats.

Every result goes first to a JSON Lines *journal*, one album per line, appended and
flushed batch by batch (``os.write`` of whole lines, ``os.fsync`` every few hundred
records or seconds). For ``--format jsonl`` the journal *is* the output file; for csv and
parquet it is ``OUT.partial.jsonl`` next to the output, converted into ``OUT`` (through a
temporary file and an atomic rename) when the run completes, then deleted. So:

- ``kill -9`` at any moment leaves at most one torn last line, which the next run cuts off
  (``repair_journal``); every other line is a complete album, skipped on resume.
- A finished csv/parquet output that is re-run (e.g. with a grown manifest) is read back
  into a journal first (``seed_journal``), so csv and parquet are resumable too.
- A lock file (``OUT.lock``, ``flock``) keeps two runs from writing the same output.

Record schema (CONTRACT §4): ``id``, ``status`` ("ok" | "error"), ``genres`` (list),
``scores`` ({label: score}), ``modalities`` (list), ``warnings`` (list), ``error`` (error
records only; they have no genres/scores), then the manifest's extra fields. In CSV, list
and dict cells hold JSON text; in Parquet they are list<string> / map<string, double>.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from genre_tagger.errors import UserInputError

FORMATS = ("jsonl", "csv", "parquet")
SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
                  ".parquet": "parquet", ".pq": "parquet"}
FIXED_COLUMNS = ("id", "status", "genres", "scores", "modalities", "warnings", "error")
JSON_COLUMNS = ("genres", "scores", "modalities", "warnings")  # lists/dicts: JSON text in CSV
PARQUET_ROW_GROUP = 10_000
FSYNC_EVERY_RECORDS = 256
FSYNC_EVERY_SECONDS = 5.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- paths and formats


def output_format(output: str | Path, requested: str | None) -> str:
    """``requested`` if given, else from the output's extension, else jsonl."""
    if requested is not None:
        if requested not in FORMATS:
            raise UserInputError(f"unknown output format {requested!r}: use one of {', '.join(FORMATS)}")
        return requested
    return SUFFIX_FORMATS.get(Path(output).suffix.lower(), "jsonl")


def journal_path(output: str | Path, fmt: str) -> Path:
    """Where results are appended while running: the output itself for jsonl."""
    output = Path(output)
    return output if fmt == "jsonl" else output.with_name(output.name + ".partial.jsonl")


def rank_journal_path(output: str | Path, rank: int) -> Path:
    """One rank's shard under DDP: ``OUT.rank{k}.partial.jsonl``."""
    output = Path(output)
    return output.with_name(f"{output.name}.rank{rank}.partial.jsonl")


def rank_journals(output: str | Path) -> list[Path]:
    """Every rank shard of ``output`` on disk (also those of an earlier, larger world)."""
    output = Path(output)
    return sorted(output.parent.glob(f"{output.name}.rank*.partial.jsonl"))


def count_manifest_rows(manifest: str | Path) -> int | None:
    """A cheap album count for progress: newlines (jsonl, csv minus header), Parquet metadata."""
    path = Path(manifest)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        lines, last = 0, b"\n"
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        lines += last != b"\n"
        return max(lines - 1, 0) if suffix == ".csv" else lines
    except Exception:  # noqa: BLE001 - only an estimate; the manifest reader reports real problems
        return None


class OutputLock:
    """An exclusive ``flock`` on ``OUT.lock`` for the run's lifetime (freed even by kill -9)."""

    def __init__(self, output: str | Path):
        self.path = Path(output).with_name(Path(output).name + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock (documented)
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise UserInputError(f"another run is writing {self.path.with_suffix('')}; "
                                     "wait for it or choose another --output") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file that its previous holder unlinked meanwhile
                self._fd = fd
                return self
            os.close(fd)

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


# --------------------------------------------------------------------------- record helpers


def status_kind(record: dict[str, Any]) -> str:
    """Summary bucket: "error", "warning" (ok with warnings) or "ok"."""
    if record.get("status") != "ok":
        return "error"
    return "warning" if record.get("warnings") else "ok"


def dumps(record: dict[str, Any]) -> str:
    """One journal line (with its newline). Non-JSON extras (dates from Parquet...) become text."""
    return json.dumps(record, ensure_ascii=False, default=str, allow_nan=False) + "\n"


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    """A journal line -> its record, or None when it is not a complete record."""
    try:
        record = json.loads(raw)
    except ValueError:  # also UnicodeDecodeError
        return None
    if isinstance(record, dict) and isinstance(record.get("id"), str) and "status" in record:
        return record
    return None


@dataclass
class JournalState:
    """What a journal already holds: album ids and summary counts (ok / warning / error)."""

    ids: set[str] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        self.ids.add(record["id"])
        self.counts[status_kind(record)] += 1

    @property
    def total(self) -> int:
        return len(self.ids)


# --------------------------------------------------------------------------- reading and repair


def iter_journal(path: str | Path) -> Iterator[dict[str, Any]]:
    """Complete records of a journal, first occurrence of each id only; torn lines skipped.

    Tolerant by design: it may read a file another process is appending to.
    """
    seen: set[str] = set()
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a torn last line: not an album yet
            record = _parse_line(raw)
            if record is not None and record["id"] not in seen:
                seen.add(record["id"])
                yield record


def journal_ids(path: str | Path) -> set[str]:
    return {record["id"] for record in iter_journal(path)}


def repair_journal(path: str | Path) -> JournalState:
    """Make ``path`` a clean journal and return what it holds.

    A torn tail (a last line with no newline, or lines after the last complete record that
    are not records: the trace of kill -9 or a power loss) is cut off. Bad or duplicate
    lines *between* records are dropped by an atomic rewrite. A file with complete lines
    but no record at all is refused: it is not ours to repair.
    """
    path = Path(path)
    state = JournalState()
    if not path.exists():
        return state
    offset = good_end = 0
    bad_before_good = foreign = False
    pending_bad = False  # a bad line since the last good one
    with open(path, "rb") as handle:
        for raw in handle:
            offset += len(raw)
            if not raw.strip():
                continue
            record = _parse_line(raw) if raw.endswith(b"\n") else None
            if record is None or record["id"] in state.ids:
                pending_bad = True
                foreign = foreign or (record is None and raw.endswith(b"\n"))
                continue
            state.add(record)
            bad_before_good = bad_before_good or pending_bad
            pending_bad = False
            good_end = offset
    if not state.ids and foreign:
        raise UserInputError(f"{path} exists but holds no tagging records; delete it or choose another --output")
    if bad_before_good:
        _rewrite_clean(path)
    elif pending_bad:
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
            os.fsync(handle.fileno())
        say(f"note: {path}: cut off an incomplete last line left by an interrupted run (that album is tagged again)")
    return state


def _rewrite_clean(path: Path) -> None:
    """Keep only complete, first-seen records: written to a temporary file, then renamed."""
    tmp = path.with_name(f".{path.name}.repair.tmp")
    kept = 0
    with open(tmp, "w", encoding="utf-8") as out:
        for record in iter_journal_all(path):
            out.write(dumps(record))
            kept += 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    say(f"note: {path}: dropped damaged or duplicate lines; kept {kept} complete records")


def iter_journal_all(path: str | Path) -> Iterator[dict[str, Any]]:
    """Like ``iter_journal`` but also past bad lines (for the repair rewrite)."""
    seen: set[str] = set()
    with open(path, "rb") as handle:
        for raw in handle:
            record = _parse_line(raw) if raw.endswith(b"\n") else None
            if record is not None and record["id"] not in seen:
                seen.add(record["id"])
                yield record


# --------------------------------------------------------------------------- appending


class JournalWriter:
    """Appends whole lines with ``os.write`` and syncs every N records or T seconds.

    ``write`` is all-or-nothing as seen by later runs: if it is interrupted (Ctrl-C, a
    DataLoader-worker failure raised from a signal handler), the file is cut back to the
    end of the last complete write before the exception goes on.
    """

    def __init__(self, path: str | Path, fsync_records: int = FSYNC_EVERY_RECORDS,
                 fsync_seconds: float = FSYNC_EVERY_SECONDS):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            _fsync_dir(self.path.parent)  # the new file's name survives a power loss too
        self._end = os.fstat(self._fd).st_size
        self._fsync_records, self._fsync_seconds = fsync_records, fsync_seconds
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def write(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records (one ``os.write`` per call when possible); returns how many."""
        lines = [dumps(record) for record in records]
        if not lines:
            return 0
        data = "".join(lines).encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except BaseException:
            os.ftruncate(self._fd, self._end)
            raise
        self._end += len(data)
        self._unsynced += len(lines)
        if self._unsynced >= self._fsync_records or time.monotonic() - self._last_sync >= self._fsync_seconds:
            self.sync()
        return len(lines)

    def sync(self) -> None:
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- finished csv / parquet


def seed_journal(output: Path, fmt: str, journal: Path) -> None:
    """A finished csv/parquet output with no journal beside it: read it back into a journal
    (temporary file, then rename) so the run can add the albums it lacks."""
    if fmt == "jsonl" or journal.exists() or not output.exists():
        return
    rows = _read_parquet_rows(output) if fmt == "parquet" else _read_csv_rows(output)
    tmp = journal.with_name(f".{journal.name}.seed.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for record in rows:
            out.write(dumps(record))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, journal)


def output_ids(output: Path, fmt: str) -> set[str]:
    """Album ids of a finished output file (empty when there is none)."""
    if not output.exists():
        return set()
    if fmt == "jsonl":
        return journal_ids(output)
    rows = _read_parquet_rows(output) if fmt == "parquet" else _read_csv_rows(output)
    return {row["id"] for row in rows}


def _not_ours(output: Path) -> UserInputError:
    return UserInputError(f"{output} exists but is not a genre-tagger tagging output (no id/status columns); "
                          "delete it or choose another --output")


def _read_csv_rows(output: Path) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(2**31 - 1)
    with open(output, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"id", "status"} <= set(reader.fieldnames or ()):
            raise _not_ours(output)
        for row in reader:
            yield _record_from_cells(row)


def _record_from_cells(row: dict[str, str]) -> dict[str, Any]:
    """Inverse of the CSV cells: JSON columns parsed, empty cells dropped / null."""
    record: dict[str, Any] = {}
    for key, cell in row.items():
        if key in JSON_COLUMNS:
            if cell:
                record[key] = json.loads(cell)
        elif key == "error":
            if cell:
                record[key] = cell
        else:
            record[key] = cell if cell != "" or key in ("id", "status") else None
    return record


def _read_parquet_rows(output: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(output)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types
        raise UserInputError(f"{output} exists but cannot be read as Parquet ({err}); delete it or choose another --output")
    if not {"id", "status"} <= set(parquet.schema_arrow.names):
        raise _not_ours(output)
    for batch in parquet.iter_batches(batch_size=PARQUET_ROW_GROUP):
        for row in batch.to_pylist():
            if isinstance(row.get("scores"), list):  # map columns come back as (key, value) pairs
                row["scores"] = dict(row["scores"])
            yield {k: v for k, v in row.items() if v is not None or k not in ("error", "genres", "scores")}


def finalize(journal: Path, output: Path, fmt: str) -> None:
    """Convert the journal into ``output`` (csv/parquet) atomically, then delete the journal.

    Crash-safe at every step: until the rename the old output (if any) is intact and the
    journal holds everything; after it, a leftover journal is a superset that the next run
    converts again.
    """
    if fmt == "jsonl":
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        extras = _extra_columns(journal)
        if fmt == "csv":
            _write_csv(journal, tmp, extras)
        else:
            _write_parquet(journal, tmp, extras)
        os.replace(tmp, output)
        _fsync_dir(output.parent)
    finally:
        tmp.unlink(missing_ok=True)
    journal.unlink()


def _extra_columns(journal: Path) -> dict[str, set[type]]:
    """First pass: every extra field, in first-seen order, with the value types it holds."""
    columns: dict[str, set[type]] = {}
    for record in iter_journal(journal):
        for key, value in record.items():
            if key not in FIXED_COLUMNS:
                columns.setdefault(key, set()).add(type(value))
    return columns


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _write_csv(journal: Path, target: Path, extras: dict[str, set[type]]) -> None:
    names = [*FIXED_COLUMNS, *extras]
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for record in iter_journal(journal):
            writer.writerow([_csv_cell(record.get(name)) for name in names])
        handle.flush()
        os.fsync(handle.fileno())


def _arrow_type(types: set[type]) -> Any:
    """One Arrow type for an extra column; anything mixed or nested is stored as JSON text."""
    import pyarrow as pa

    kinds = types - {type(None)}
    if not kinds or kinds == {str}:
        return pa.string()
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    return None  # JSON text


def _parquet_schema(extras: dict[str, set[type]]) -> tuple[Any, set[str]]:
    import pyarrow as pa

    fields = [
        pa.field("id", pa.string(), nullable=False), pa.field("status", pa.string(), nullable=False),
        pa.field("genres", pa.list_(pa.string())), pa.field("scores", pa.map_(pa.string(), pa.float64())),
        pa.field("modalities", pa.list_(pa.string())), pa.field("warnings", pa.list_(pa.string())),
        pa.field("error", pa.string()),
    ]
    as_json = set()
    for name, types in extras.items():
        arrow_type = _arrow_type(types)
        if arrow_type is None:
            as_json.add(name)
            arrow_type = pa.string()
        fields.append(pa.field(name, arrow_type))
    return pa.schema(fields), as_json


def _write_parquet(journal: Path, target: Path, extras: dict[str, set[type]]) -> None:
    """Second pass: row groups of ``PARQUET_ROW_GROUP`` albums, so memory stays flat."""
    import pyarrow.parquet as pq

    schema, as_json = _parquet_schema(extras)
    names = schema.names
    with pq.ParquetWriter(target, schema) as writer:
        rows: list[dict[str, Any]] = []
        for record in iter_journal(journal):
            rows.append(record)
            if len(rows) >= PARQUET_ROW_GROUP:
                writer.write_table(_parquet_table(rows, names, schema, as_json))
                rows = []
        if rows:
            writer.write_table(_parquet_table(rows, names, schema, as_json))


def _parquet_table(rows: list[dict[str, Any]], names: list[str], schema: Any, as_json: set[str]) -> Any:
    import pyarrow as pa

    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if name == "scores":
            values = [list(v.items()) if isinstance(v, dict) else None for v in values]
        elif name in as_json:
            values = [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values]
        columns[name] = values
    return pa.Table.from_pydict(columns, schema=schema)


def summarize(output: Path, fmt: str) -> JournalState:
    """Ids and counts of a finished output (for the distributed path's summary)."""
    state = JournalState()
    if fmt == "jsonl":
        records: Iterable[dict[str, Any]] = iter_journal(output)
    elif output.exists():
        records = _read_parquet_rows(output) if fmt == "parquet" else _read_csv_rows(output)
    else:
        records = ()
    for record in records:
        state.add(record)
    return state
