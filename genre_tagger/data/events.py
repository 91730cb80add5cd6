"""Listening events (docs/metrics.md): who played which album when.

One event per line of JSON Lines (or a row of CSV / Parquet): ``user`` (string),
``album`` (an id of the manifest), ``timestamp`` (ISO 8601, or Unix seconds as a number
or, in CSV, a numeric cell). Any order; other fields are ignored. A user's history is
their events sorted by time (ties keep file order).

``read_events(path, known_albums)`` keeps every usable event and returns one
``EventIssue`` per bad line (line number and field) and per event whose album is not in
the manifest: those are skipped, nothing else is lost. Line numbers: JSONL the physical
line, CSV the physical line (header = 1), Parquet the 1-based row.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from genre_tagger.data.manifest.readers import MANIFEST_SUFFIXES, csv_records, table_format
from genre_tagger.errors import UserInputError

EVENT_SUFFIXES = MANIFEST_SUFFIXES  # the same table formats as manifests
FIELDS = ("user", "album", "timestamp")


@dataclass
class EventIssue:
    """One skipped event: ``kind`` is 'bad' (unusable line) or 'unknown_album'."""

    line: int
    field: str
    message: str
    kind: str = "bad"

    def format(self, source: str | Path | None = None) -> str:
        where = f"{source}:{self.line}" if source is not None else f"line {self.line}"
        return f"{where}: field '{self.field}': {self.message}"


@dataclass
class EventLog:
    """Usable events grouped per user: ``histories[user]`` = album ids, oldest first."""

    histories: dict[str, list[str]]
    times: dict[str, list[float]]
    issues: list[EventIssue] = field(default_factory=list)
    n_events: int = 0

    @property
    def n_unknown(self) -> int:
        return sum(issue.kind == "unknown_album" for issue in self.issues)

    @property
    def n_bad(self) -> int:
        return sum(issue.kind == "bad" for issue in self.issues)

    def summary(self, source: str | Path, shown: int = 20) -> list[str]:
        """Lines for a user: the first ``shown`` issues, then the counts."""
        lines = [issue.format(source) for issue in self.issues[:shown]]
        if len(self.issues) > shown:
            lines.append(f"{source}: ... and {len(self.issues) - shown} more skipped event(s)")
        if self.issues:
            lines.append(f"{source}: kept {self.n_events} event(s) of {len(self.histories)} user(s); skipped "
                         f"{self.n_bad} bad line(s) and {self.n_unknown} event(s) with an album id not in the manifest")
        return lines


def parse_timestamp(value: Any) -> float:
    """ISO 8601 (naive = UTC) or Unix seconds -> Unix seconds; ValueError when neither."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected ISO 8601 or Unix seconds, got {json.dumps(value)}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            except ValueError:
                raise ValueError(f"not ISO 8601 or Unix seconds: {value!r}") from None
            seconds = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    else:
        raise ValueError(f"expected ISO 8601 or Unix seconds, got {type(value).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite time: {value!r}")
    return seconds


def _identifier(value: Any, name: str) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"missing {name}" if value is None else f"{name} must be a string")
    if isinstance(value, int):
        return str(value)  # numeric user ids from CSV/Parquet exports
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {json.dumps(value, default=str)}")
    return value.strip()


Row = tuple[int, Any]  # (line, object or an error message string)


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8").lstrip("\ufeff").strip()
            except UnicodeDecodeError:
                yield line, "not valid UTF-8"
                continue
            if not text:
                continue
            try:
                yield line, json.loads(text)
            except json.JSONDecodeError as err:
                yield line, f"invalid JSON: {err.msg} at column {err.colno}"


def _csv_rows(path: Path) -> Iterator[Row]:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        names = [cell.strip() for cell in header]
        missing = [name for name in FIELDS if name not in names]
        if missing:
            raise UserInputError(f"{path}: the header has no column {', '.join(missing)} (columns: {', '.join(names)})")
        for start, row in csv_records(reader):
            if isinstance(row, csv.Error):
                yield start, f"malformed CSV: {row}"
            elif any(cell.strip() for cell in row):
                yield start, {name: (cell if cell != "" else None) for name, cell in zip(names, row)}


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types for a bad file
        raise UserInputError(f"cannot read Parquet events {path}: {err}") from None
    missing = [name for name in FIELDS if name not in parquet.schema_arrow.names]
    if missing:
        raise UserInputError(f"{path}: no column {', '.join(missing)}")
    row = 0
    for batch in parquet.iter_batches(batch_size=4096, columns=list(FIELDS)):
        for obj in batch.to_pylist():
            row += 1
            yield row, obj


def _rows(path: Path) -> Iterator[Row]:
    fmt = table_format(path, EVENT_SUFFIXES, "events")
    if not path.is_file():
        raise UserInputError(f"events file not found: {path}" if not path.exists() else f"not a file: {path}")
    return {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}[fmt](path)


def _parse(line: int, obj: Any, known: set[str] | None) -> tuple[tuple[str, str, float] | None, EventIssue | None]:
    if isinstance(obj, str):
        return None, EventIssue(line, "<line>", obj)
    if not isinstance(obj, dict):
        return None, EventIssue(line, "<line>", f"expected an object with {', '.join(FIELDS)}")
    for name in FIELDS:
        try:
            value = parse_timestamp(obj.get(name)) if name == "timestamp" else _identifier(obj.get(name), name)
        except ValueError as err:
            return None, EventIssue(line, name, str(err))
        if name == "user":
            user = value
        elif name == "album":
            album = value
        else:
            when = value
    if known is not None and album not in known:
        return None, EventIssue(line, "album", f"album id {album!r} is not in the manifest; event skipped",
                                "unknown_album")
    return (user, album, when), None


def read_events(path: str | Path, known_albums: Iterable[str] | None = None) -> EventLog:
    """Every usable event of ``path`` grouped per user and sorted by time; see the module doc.

    Raises ``UserInputError`` when the file is missing, of an unknown format, or holds no
    usable event at all.
    """
    path = Path(path)
    known = set(known_albums) if known_albums is not None else None
    per_user: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    issues: list[EventIssue] = []
    for line, obj in _rows(path):
        event, issue = _parse(line, obj, known)
        if issue is not None:
            issues.append(issue)
        else:
            user, album, when = event
            per_user[user].append((when, line, album))
    if not per_user:
        detail = f" ({len(issues)} line(s) skipped; first: {issues[0].format(path)})" if issues else ""
        raise UserInputError(f"{path}: no usable listening event{detail}")
    histories, times = {}, {}
    for user, events in per_user.items():
        events.sort()
        histories[user] = [album for _, _, album in events]
        times[user] = [when for when, _, _ in events]
    return EventLog(histories, times, issues, sum(len(h) for h in histories.values()))


def write_events(events: Iterable[dict], path: str | Path) -> Path:
    """Events (dicts with user, album, timestamp) as JSON Lines, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    with open(partial, "w", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event, ensure_ascii=False) + "\n")
    partial.replace(path)
    return path
