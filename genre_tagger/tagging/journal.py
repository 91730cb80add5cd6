"""The append-only journal of a tagging run, its crash repair and the output lock.

Every result goes first to a JSON Lines *journal*, one album per line, appended and
flushed batch by batch (``os.write`` of whole lines, ``os.fsync`` every few hundred
records or seconds). For ``--format jsonl`` the journal *is* the output file; for csv and
parquet it is ``OUT.partial.jsonl`` next to the output, converted by ``formats.finalize``
when the run completes. So ``kill -9`` at any moment leaves at most one torn last line,
which the next run cuts off (``repair_journal``); every other line is a complete album,
skipped on resume. A lock file (``OUT.lock``, ``flock``) keeps two runs from writing the
same output.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from genre_tagger.errors import UserInputError
from genre_tagger.runs import say
from genre_tagger.tagging.records import status_kind


FSYNC_EVERY_RECORDS = 256
FSYNC_EVERY_SECONDS = 5.0


def journal_path(output: str | Path, fmt: str) -> Path:
    """Where results are appended while running: the output itself for jsonl."""
    output = Path(output)
    return output if fmt == "jsonl" else output.with_name(output.name + ".partial.jsonl")


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
        say(f"note: {path}: cut off an incomplete last line left by an interrupted run (that album is tagged again)",
            every_rank=True)
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
    say(f"note: {path}: dropped damaged or duplicate lines; kept {kept} complete records", every_rank=True)


def iter_journal_all(path: str | Path) -> Iterator[dict[str, Any]]:
    """Like ``iter_journal`` but also past bad lines (for the repair rewrite)."""
    seen: set[str] = set()
    with open(path, "rb") as handle:
        for raw in handle:
            record = _parse_line(raw) if raw.endswith(b"\n") else None
            if record is not None and record["id"] not in seen:
                seen.add(record["id"])
                yield record


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
            fsync_dir(self.path.parent)  # the new file's name survives a power loss too
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


def fsync_dir(folder: Path) -> None:
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
