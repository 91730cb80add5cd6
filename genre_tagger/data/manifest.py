"""Read, validate and write album manifests (JSON Lines, CSV, Parquet).

The schema, the path rules and every validation message are described for users in
``data_manifests/README.md``; this module is the one place that implements them.

Public API
----------
``iter_manifest(path) -> Iterator[tuple[AlbumRecord | None, list[ManifestIssue]]]``
    Lazy: one tuple per data line (JSONL), row (CSV) or row (Parquet), read as the
    caller iterates, so a million-album manifest never sits in memory. The record is
    None when the line is unusable (invalid JSON, not an object, no valid id, duplicate
    id); the list holds that line's issues. A problem with one field drops that field
    (it reads as absent) and reports an 'error' issue, but the record is still yielded.
    Raises ``UserInputError`` at once (not at the first ``next``) when the file does not
    exist, is a folder, has an unknown extension, is UTF-16, or is not readable Parquet.
``read_manifest(path) -> tuple[list[AlbumRecord], list[ManifestIssue]]``
    Eager helper: every usable record (duplicates: the first one wins) and every issue.
``validate_manifest(path, deep=False, *, workers=2, progress=None) -> list[ManifestIssue]``
    Every problem, sorted by line: parse problems, media files that do not exist, are
    folders or cannot be read ('error'), albums with no modality at all ('warning'), an
    empty manifest ('error'). ``deep=True`` also decodes every file with
    ``genre_tagger.data.{audio,image,text}.check_*_file`` in a pool of ``workers`` threads,
    with a tqdm progress bar on stderr (``progress=None``: only on a terminal).
``manifest_is_usable(issues) -> bool``
    True when no issue has severity 'error': the rule behind ``validate``'s exit status.
``write_manifest(albums, path) -> Path``
    Writes ``AlbumRecord``\\ s or plain dicts as JSON Lines, atomically; paths inside the
    manifest's folder are written relative to it, others absolute.
``MANIFEST_SUFFIXES``: the accepted file extensions, by format.

Line numbers: JSONL, the 1-based physical line; CSV, the physical line where the row
starts (the header is line 1); Parquet, the 1-based row number. Line 0 is the manifest as
a whole. Pseudo-fields in issues: ``<line>`` (the whole line), ``<header>`` (CSV header),
``<album>`` (the album as a whole), ``<manifest>`` (the whole file).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import stat
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genre_tagger.data.records import SPLITS, AlbumRecord, ManifestIssue
from genre_tagger.errors import UserInputError

__all__ = [
    "MANIFEST_SUFFIXES",
    "iter_manifest",
    "manifest_is_usable",
    "read_manifest",
    "validate_manifest",
    "write_manifest",
]

MANIFEST_SUFFIXES = {
    "jsonl": (".jsonl", ".json", ".ndjson"),
    "csv": (".csv",),
    "parquet": (".parquet",),
}
SCHEMA_FIELDS = ("id", "audio", "cover", "texts", "text_files", "genres", "split", "artist")
PATH_FIELDS = ("audio", "cover", "text_files")

LINE, HEADER, ALBUM, MANIFEST = "<line>", "<header>", "<album>", "<manifest>"

_SPLIT_HINTS = {
    "training": "train", "valid": "val", "validation": "val", "dev": "val",
    "eval": "test", "testing": "test",
}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PARQUET_BATCH = 1024
_DEEP_WINDOW = 64  # files in flight at once during deep checks: bounds memory


class _BadField(Exception):
    """A field's value cannot be used: reported as an 'error', the field reads as absent."""


# --------------------------------------------------------------------------- per line


@dataclass
class _Line:
    """Where one line's fields are parsed: its location, base folder and issues."""

    line: int
    base: Path
    tabular: bool  # CSV / Parquet: list fields may hold JSON array text
    issues: list[ManifestIssue] = field(default_factory=list)
    album_id: str | None = None

    def add(self, field_name: str, message: str, severity: str = "error") -> None:
        self.issues.append(ManifestIssue(self.line, field_name, message, self.album_id, severity))


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", bool: "a boolean", int: "a number",
             float: "a number", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _as_list(value: Any, ctx: _Line, *, text_fallback: str = "never") -> list[Any]:
    """One value, a list, or (CSV/Parquet) JSON array text -> a list; null -> [].

    ``text_fallback`` says when a tabular cell that starts with '[' but is no JSON array
    is taken as one plain item instead of an error: "never" (genres), "unbracketed"
    (paths: "[2001] x.wav" is a file name, '["a.wav", ' a broken array) or "always" (texts).
    """
    if _is_null(value):
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str):
        raise _BadField(f"expected a list or a string, got {_type_name(value)}")
    text = value.strip()
    if not (ctx.tabular and text.startswith("[")):
        return [value]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        if text_fallback == "always" or (text_fallback == "unbracketed" and not text.endswith("]")):
            return [value]
        raise _BadField(f"not a valid JSON array: {exc.msg} at column {exc.colno}") from None
    if not isinstance(parsed, list):
        return [value]
    if text_fallback == "always" and not all(isinstance(item, str) for item in parsed):
        return [value]
    return parsed


def _resolve(value: Any, ctx: _Line) -> Path | None:
    """A path string -> an absolute, normalised Path (relative to the manifest folder)."""
    if _is_null(value) or value == "":
        return None
    if not isinstance(value, str):
        raise _BadField(f"expected a path string, got {_type_name(value)}")
    if "\x00" in value:
        raise _BadField("path contains a NUL character")
    if _URL.match(value):
        raise _BadField(f"URLs are not supported ({value!r}): download the file and give its path")
    text = os.path.expanduser(value) if value.startswith("~") else value
    if not os.path.isabs(text):
        text = os.path.join(ctx.base, text)
    return Path(os.path.normpath(text))  # string ops first: one Path per file, not three


def _parse_id(value: Any, ctx: _Line) -> str:
    if isinstance(value, bool) or _is_null(value):
        raise _BadField("missing id" if _is_null(value) else "id must be a string, got a boolean")
    if isinstance(value, int):
        ctx.album_id = str(value)
        ctx.add("id", f"id is a number ({value}); read as the string '{value}' "
                "(write ids as strings: numbers lose leading zeros)", "warning")
        return str(value)
    if not isinstance(value, str):
        raise _BadField(f"id must be a string, got {_type_name(value)}")
    if not value.strip():
        raise _BadField("id is empty")
    return value


def _parse_audio(value: Any, ctx: _Line) -> list[Path]:
    paths = [_resolve(item, ctx) for item in _as_list(value, ctx, text_fallback="unbracketed")]
    return [p for p in paths if p is not None]


def _parse_cover(value: Any, ctx: _Line) -> Path | None:
    if isinstance(value, (list, tuple)):
        raise _BadField(f"expected one path, got a list of {len(value)}")
    return _resolve(value, ctx)


def _parse_texts(value: Any, ctx: _Line) -> list[str]:
    items = _as_list(value, ctx, text_fallback="always")
    bad = [item for item in items if not _is_null(item) and not isinstance(item, str)]
    if bad:
        raise _BadField(f"texts must be strings, got {_type_name(bad[0])}")
    return [item for item in items if isinstance(item, str) and item.strip()]


def _parse_genres(value: Any, ctx: _Line) -> list[str] | None:
    items = _as_list(value, ctx)
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise _BadField(f"genres must be strings, got {_type_name(bad[0])}")
    genres = list(dict.fromkeys(item.strip() for item in items if item.strip()))
    return genres or None


def _parse_split(value: Any, ctx: _Line) -> str | None:
    if _is_null(value) or value == "":
        return None
    if not isinstance(value, str):
        raise _BadField(f"split must be one of {', '.join(SPLITS)} or null, got {_type_name(value)}")
    split = value.strip().lower()
    if split in SPLITS:
        return split
    hint = f"; did you mean '{_SPLIT_HINTS[split]}'?" if split in _SPLIT_HINTS else ""
    raise _BadField(f"unknown split {value!r}: use one of {', '.join(SPLITS)} or null{hint}")


def _parse_artist(value: Any, ctx: _Line) -> str | None:
    if _is_null(value) or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _BadField(f"artist must be a string, got {_type_name(value)}")
    return value if value.strip() else None


_PARSERS: dict[str, Callable[[Any, _Line], Any]] = {
    "audio": _parse_audio,
    "cover": _parse_cover,
    "texts": _parse_texts,
    "text_files": _parse_audio,  # same rules: a list of paths, or one path
    "genres": _parse_genres,
    "split": _parse_split,
    "artist": _parse_artist,
}


def _unknown_field_issue(key: str, obj: Mapping[str, Any], ctx: _Line) -> None:
    guess = key.strip().lower() if isinstance(key, str) else None
    if guess in SCHEMA_FIELDS and guess not in obj:
        ctx.add(key, f"unknown field kept as extra; did you mean '{guess}'?", "warning")


def _build_record(obj: Mapping[str, Any], ctx: _Line) -> AlbumRecord | None:
    """One JSON object / CSV row / Parquet row -> a record (None when it has no usable id)."""
    try:
        album_id: str | None = _parse_id(obj.get("id"), ctx)
        ctx.album_id = album_id
    except _BadField as exc:
        album_id = None
        ctx.add("id", str(exc))
    values: dict[str, Any] = {}
    for name, parse in _PARSERS.items():
        try:
            values[name] = parse(obj.get(name), ctx)
        except _BadField as exc:
            ctx.add(name, str(exc))
    extra = {key: value for key, value in obj.items() if key not in SCHEMA_FIELDS}
    for key in extra:
        _unknown_field_issue(key, obj, ctx)
    if album_id is None:
        return None
    return AlbumRecord(id=album_id, extra=extra, line=ctx.line, **values)


# --------------------------------------------------------------------------- readers

# A reader yields (line, object or None, issues) for every non-blank line / row.
_Row = tuple[int, "Mapping[str, Any] | None", list[ManifestIssue]]


def _decode(raw: bytes, line: int, issues: list[ManifestIssue]) -> str:
    """Bytes of one line -> text; invalid UTF-8 is replaced and reported."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(ManifestIssue(line, LINE, f"not valid UTF-8 (byte {exc.start + 1} of the line); "
                                    "bad bytes replaced: save the manifest as UTF-8"))
        text = raw.decode("utf-8", errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def _jsonl_rows(path: Path) -> Iterator[_Row]:
    seen_content = False
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            issues: list[ManifestIssue] = []
            text = _decode(raw, line, issues).rstrip("\r\n")
            if not text.strip():
                continue
            if not seen_content and text.lstrip().startswith("["):
                yield line, None, [ManifestIssue(line, LINE, "the file is one JSON array, not JSON Lines: "
                                                 "write one album object per line")]
                return
            seen_content = True
            yield _parse_json_line(text, line, issues)


def _parse_json_line(text: str, line: int, issues: list[ManifestIssue]) -> _Row:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        issues.append(ManifestIssue(line, LINE, f"invalid JSON: {exc.msg} at column {exc.colno}"))
        return line, None, issues
    if not isinstance(obj, dict):
        issues.append(ManifestIssue(line, LINE, f"expected a JSON object {{...}}, got {_type_name(obj)}"))
        return line, None, issues
    return line, obj, issues


def _decoded_lines(handle: Any, bad: dict[int, list[ManifestIssue]]) -> Iterator[str]:
    """Binary file -> text lines (ends kept, for csv); decoding issues go to ``bad``."""
    for line, raw in enumerate(handle, start=1):
        issues: list[ManifestIssue] = []
        text = _decode(raw, line, issues)
        if issues:
            bad[line] = issues
        yield text


def _csv_header(reader: Any) -> tuple[list[str], list[ManifestIssue]] | None:
    for row in reader:
        if any(cell.strip() for cell in row):
            break
    else:
        return None
    line = reader.line_num
    names = [cell.strip() for cell in row]
    issues = [ManifestIssue(line, HEADER, f"column {i + 1} has no name; its values are ignored", None, "warning")
              for i, name in enumerate(names) if not name]
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        issues.append(ManifestIssue(line, HEADER, f"column '{name}' appears more than once; "
                                    "the last one is used", None, "warning"))
    if "id" not in names:
        issues.append(ManifestIssue(line, "id", f"the header has no 'id' column (columns: {', '.join(names)})"))
    return names, issues


def _csv_row(names: list[str], row: list[str], start: int) -> _Row:
    issues = []
    if len(row) != len(names):
        what = "extra cells are ignored" if len(row) > len(names) else "missing cells read as empty"
        issues.append(ManifestIssue(start, LINE, f"the row has {len(row)} cells but the header has "
                                    f"{len(names)}: {what}", None, "warning"))
    obj = {name: (cell if cell != "" else None) for name, cell in zip(names, row) if name}
    return start, obj, issues


def _csv_rows(path: Path) -> Iterator[_Row]:
    csv.field_size_limit(2**31 - 1)  # long reviews: the default 128 KiB cell limit is too small
    bad: dict[int, list[ManifestIssue]] = {}
    with open(path, "rb") as handle:
        reader = csv.reader(_decoded_lines(handle, bad))
        header = _csv_header(reader)
        if header is None:
            return
        names, header_issues = header
        header_line = reader.line_num
        decoding = [issue for n in sorted(bad) if n <= header_line for issue in bad.pop(n)]
        if header_issues or decoding:
            yield header_line, None, [*decoding, *header_issues]
        if "id" not in names:
            return
        yield from _csv_body(reader, names, bad)


def _csv_body(reader: Any, names: list[str], bad: dict[int, list[ManifestIssue]]) -> Iterator[_Row]:
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, None, [ManifestIssue(start, LINE, f"malformed CSV: {exc}")]
            if reader.line_num < start:
                return
            continue
        line_issues = [issue for n in range(start, reader.line_num + 1) for issue in bad.pop(n, [])]
        if not any(cell.strip() for cell in row):
            continue
        line, obj, issues = _csv_row(names, row, start)
        yield line, obj, [*line_issues, *issues]


def _open_parquet(path: Path) -> Iterator[_Row]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise UserInputError(f"cannot read Parquet manifest {path}: {exc}") from None
    return _parquet_rows(parquet)


def _parquet_rows(parquet: Any) -> Iterator[_Row]:
    names = parquet.schema_arrow.names
    if "id" not in names:
        yield 0, None, [ManifestIssue(0, "id", f"the file has no 'id' column (columns: {', '.join(names)})")]
        return
    columns = [n for n in names if not n.startswith("__index_level_")]  # pandas' saved index
    row = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=columns):
        for obj in batch.to_pylist():
            row += 1
            yield row, obj, []


# --------------------------------------------------------------------------- public: reading


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    for fmt, suffixes in MANIFEST_SUFFIXES.items():
        if suffix in suffixes:
            return fmt
    known = ", ".join(s for suffixes in MANIFEST_SUFFIXES.values() for s in suffixes)
    raise UserInputError(f"unknown manifest format {suffix or '(no extension)'!r} for {path}: use one of {known}")


def _check_manifest_file(path: Path, fmt: str) -> None:
    if not path.exists():
        raise UserInputError(f"manifest not found: {path}")
    if path.is_dir():
        raise UserInputError(f"manifest is a folder, not a file: {path}")
    try:
        with open(path, "rb") as handle:
            start = handle.read(4)
    except OSError as exc:
        raise UserInputError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    if fmt != "parquet" and start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise UserInputError(f"manifest {path} is UTF-16: save it as UTF-8")


def _manifest_base(path: Path) -> Path:
    """The folder relative paths resolve against (the manifest's own, symlinks not followed)."""
    return Path(os.path.normpath(path.absolute().parent))


def iter_manifest(path: str | Path) -> Iterator[tuple[AlbumRecord | None, list[ManifestIssue]]]:
    """Stream ``(record or None, issues)``, one per data line; see the module docstring."""
    path = Path(path)
    fmt = _format_of(path)
    _check_manifest_file(path, fmt)
    if fmt == "jsonl":
        rows = _jsonl_rows(path)
    elif fmt == "csv":
        rows = _csv_rows(path)
    else:
        rows = _open_parquet(path)
    return _records(rows, _manifest_base(path), tabular=fmt != "jsonl")


def _records(rows: Iterable[_Row], base: Path, tabular: bool) -> Iterator[tuple[AlbumRecord | None, list[ManifestIssue]]]:
    first_line: dict[str, int] = {}  # id -> line of its first occurrence
    for line, obj, issues in rows:
        if obj is None:
            yield None, issues
            continue
        ctx = _Line(line, base, tabular, issues)
        record = _build_record(obj, ctx)
        if record is not None and record.id in first_line:
            ctx.add("id", f"duplicate id {record.id!r}: first used on line {first_line[record.id]}; "
                    "this album is skipped")
            record = None
        elif record is not None:
            first_line[record.id] = line
        yield record, ctx.issues


def read_manifest(path: str | Path) -> tuple[list[AlbumRecord], list[ManifestIssue]]:
    """Every usable record (in file order; duplicates: the first wins) and every issue."""
    records: list[AlbumRecord] = []
    issues: list[ManifestIssue] = []
    for record, line_issues in iter_manifest(path):
        issues.extend(line_issues)
        if record is not None:
            records.append(record)
    return records, issues


def manifest_is_usable(issues: Iterable[ManifestIssue]) -> bool:
    """True when no issue is an 'error': ``validate`` exits 0 exactly then."""
    return not any(issue.severity == "error" for issue in issues)


# --------------------------------------------------------------------------- public: validation


def _shown(path: Path, base: Path) -> str:
    """A path as users wrote it: relative to the manifest folder when inside it."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _media_files(record: AlbumRecord) -> Iterator[tuple[str, Path, str]]:
    """(field, path, kind) for every file an album names; kind is a modality name."""
    for path in record.audio:
        yield "audio", path, "audio"
    if record.cover is not None:
        yield "cover", record.cover, "image"
    for path in record.text_files:
        yield "text_files", path, "text"


def _file_problem(path: Path, base: Path) -> str | None:
    shown = _shown(path, base)
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"file not found: {shown!r}"
    except OSError as exc:
        return f"cannot read {shown!r}: {(exc.strerror or str(exc)).lower()}"
    if stat.S_ISDIR(info.st_mode):
        return f"is a folder, not a file: {shown!r}"
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block every reader that opens it
        return f"not a regular file (a pipe, socket or device): {shown!r}"
    if info.st_size == 0:
        return f"empty file (0 bytes): {shown!r}"
    if not os.access(path, os.R_OK):
        return f"cannot read {shown!r}: permission denied"
    return None


def _album_issues(record: AlbumRecord, base: Path) -> tuple[list[ManifestIssue], list[tuple[str, Path, str]]]:
    """File problems and the no-modality warning of one album, plus its readable files."""
    issues, readable = [], []
    for field_name, path, kind in _media_files(record):
        problem = _file_problem(path, base)
        if problem:
            issues.append(ManifestIssue(record.line, field_name, problem, record.id))
        else:
            readable.append((field_name, path, kind))
    if not any(record.has_modality(m) for m in ("audio", "image", "text")):
        issues.append(ManifestIssue(record.line, ALBUM, "no audio, cover or text: nothing to tag from",
                                    record.id, "warning"))
    return issues, readable


def _run_check(check: Callable[[Path], str | None], path: Path) -> str | None:
    try:
        return check(path)
    except Exception as exc:  # a checker that raises still gives a reason, never a crash
        return f"{type(exc).__name__}: {exc}"


class _DeepChecker:
    """Decodes files in a small thread pool, a bounded window at a time, in order."""

    def __init__(self, base: Path, workers: int, progress: bool | None) -> None:
        from tqdm import tqdm

        from genre_tagger.data.audio import check_audio_file
        from genre_tagger.data.image import check_image_file
        from genre_tagger.data.text import check_text_file

        self._checks = {"audio": check_audio_file, "image": check_image_file, "text": check_text_file}
        self._base = base
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers))
        self._pending: deque[tuple[Future, int, str, str, str]] = deque()
        self._bar = tqdm(desc="decoding files", unit="file", file=sys.stderr, delay=1.0,
                         disable=None if progress is None else not progress)
        self.issues: list[ManifestIssue] = []

    def submit(self, record: AlbumRecord, field_name: str, path: Path, kind: str) -> None:
        future = self._pool.submit(_run_check, self._checks[kind], path)
        self._pending.append((future, record.line, field_name, record.id, _shown(path, self._base)))
        while len(self._pending) > _DEEP_WINDOW:
            self._collect()

    def _collect(self) -> None:
        future, line, field_name, album_id, shown = self._pending.popleft()
        reason = future.result()
        self._bar.update(1)
        if reason:
            self.issues.append(ManifestIssue(line, field_name, f"cannot decode {shown!r}: {reason}", album_id))

    def finish(self) -> list[ManifestIssue]:
        try:
            while self._pending:
                self._collect()
        finally:
            self.close()
        return self.issues

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._bar.close()


def _empty_manifest_issue(n_lines: int) -> ManifestIssue:
    if n_lines == 0:
        return ManifestIssue(0, MANIFEST, "no albums: the manifest is empty")
    return ManifestIssue(0, MANIFEST, "no usable albums: every line has an error")


def validate_manifest(path: str | Path, deep: bool = False, *, workers: int = 2,
                      progress: bool | None = None) -> list[ManifestIssue]:
    """Every problem of a manifest, sorted by line; see the module docstring and README."""
    path = Path(path)
    records = iter_manifest(path)
    base = _manifest_base(path)
    checker = _DeepChecker(base, workers, progress) if deep else None
    issues: list[ManifestIssue] = []
    n_lines = n_albums = 0
    try:
        for record, line_issues in records:
            n_lines += 1
            issues.extend(line_issues)
            if record is None:
                continue
            n_albums += 1
            album_issues, readable = _album_issues(record, base)
            issues.extend(album_issues)
            for file_ in readable if checker else ():
                checker.submit(record, *file_)
        if checker:
            issues.extend(checker.finish())
    finally:
        if checker:
            checker.close()
    if n_albums == 0:
        issues.append(_empty_manifest_issue(n_lines))
    return sorted(issues, key=lambda issue: issue.line)


# --------------------------------------------------------------------------- public: writing


def _relative(path: str | Path, base: Path) -> str:
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()  # already relative to the manifest folder
    return _shown(Path(os.path.normpath(path)), base)


def _record_dict(record: AlbumRecord) -> dict[str, Any]:
    obj = {
        "id": record.id, "audio": record.audio or None, "cover": record.cover,
        "texts": record.texts or None, "text_files": record.text_files or None,
        "genres": record.genres, "split": record.split, "artist": record.artist,
    }
    for key, value in record.extra.items():
        obj.setdefault(key, value)
    return obj


def _json_object(album: AlbumRecord | Mapping[str, Any], base: Path) -> dict[str, Any]:
    obj = _record_dict(album) if isinstance(album, AlbumRecord) else dict(album)
    if _is_null(obj.get("id")):
        raise ValueError(f"album without an id: {obj!r}")
    for name in PATH_FIELDS:
        value = obj.get(name)
        if isinstance(value, (list, tuple)):
            obj[name] = [_relative(p, base) for p in value]
        elif isinstance(value, (str, Path)) and str(value):
            obj[name] = _relative(value, base)
    return obj


def _json_default(value: Any) -> Any:
    return str(value)  # Paths, dates from Parquet extras, ...


def write_manifest(albums: Iterable[AlbumRecord | Mapping[str, Any]], path: str | Path) -> Path:
    """Write albums as JSON Lines (UTF-8, one object per line), atomically; returns the path.

    Paths inside the manifest's folder are written relative to it (POSIX separators),
    paths elsewhere absolute; relative paths in dicts are taken as already relative to
    the manifest folder. Absent modalities are written as null.
    """
    path = Path(path)
    if _format_of(path) != "jsonl":
        raise UserInputError(f"write_manifest writes JSON Lines: use a .jsonl path, not {path.name}")
    base = _manifest_base(path)
    base.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for album in albums:
                obj = _json_object(album, base)
                handle.write(json.dumps(obj, ensure_ascii=False, default=_json_default) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
