"""The three readers (JSON Lines, CSV, Parquet), streamed: ``iter_manifest`` and ``read_manifest``."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from genre_tagger.data.manifest.fields import HEADER, LINE, LineContext, build_record, type_name
from genre_tagger.data.records import AlbumRecord, ManifestIssue
from genre_tagger.errors import UserInputError

# A reader yields (line, object or None, issues) for every non-blank line / row.


Row = tuple[int, "Mapping[str, Any] | None", list[ManifestIssue]]
_PARQUET_BATCH = 1024
MANIFEST_SUFFIXES = {
    "jsonl": (".jsonl", ".json", ".ndjson"),
    "csv": (".csv",),
    "parquet": (".parquet",),
}


def _decode(raw: bytes, line: int, issues: list[ManifestIssue]) -> str:
    """Bytes of one line -> text; invalid UTF-8 is replaced and reported."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(ManifestIssue(line, LINE, f"not valid UTF-8 (byte {exc.start + 1} of the line); "
                                    "bad bytes replaced: save the manifest as UTF-8"))
        text = raw.decode("utf-8", errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def _jsonl_rows(path: Path) -> Iterator[Row]:
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


def _parse_json_line(text: str, line: int, issues: list[ManifestIssue]) -> Row:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        issues.append(ManifestIssue(line, LINE, f"invalid JSON: {exc.msg} at column {exc.colno}"))
        return line, None, issues
    if not isinstance(obj, dict):
        issues.append(ManifestIssue(line, LINE, f"expected a JSON object {{...}}, got {type_name(obj)}"))
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


def _csv_row(names: list[str], row: list[str], start: int) -> Row:
    issues = []
    if len(row) != len(names):
        what = "extra cells are ignored" if len(row) > len(names) else "missing cells read as empty"
        issues.append(ManifestIssue(start, LINE, f"the row has {len(row)} cells but the header has "
                                    f"{len(names)}: {what}", None, "warning"))
    obj = {name: (cell if cell != "" else None) for name, cell in zip(names, row) if name}
    return start, obj, issues


def _csv_rows(path: Path) -> Iterator[Row]:
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


def csv_records(reader: Any) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """``(first physical line, cells)`` per record of a ``csv.reader``, or ``(line, csv.Error)``
    for a malformed one; stops where the reader cannot get past an error (it would repeat it)."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, exc
            if reader.line_num < start:
                return
            continue
        yield start, row


def _csv_body(reader: Any, names: list[str], bad: dict[int, list[ManifestIssue]]) -> Iterator[Row]:
    for start, row in csv_records(reader):
        if isinstance(row, csv.Error):
            yield start, None, [ManifestIssue(start, LINE, f"malformed CSV: {row}")]
            continue
        line_issues = [issue for n in range(start, reader.line_num + 1) for issue in bad.pop(n, [])]
        if not any(cell.strip() for cell in row):
            continue
        line, obj, issues = _csv_row(names, row, start)
        yield line, obj, [*line_issues, *issues]


def _open_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise UserInputError(f"cannot read Parquet manifest {path}: {exc}") from None
    return _parquet_rows(parquet)


def _parquet_rows(parquet: Any) -> Iterator[Row]:
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


def table_format(path: Path, formats: dict[str, tuple[str, ...]], what: str) -> str:
    """The key of ``formats`` whose suffixes include ``path``'s (``"jsonl"``, ``"csv"``, ...)."""
    suffix = path.suffix.lower()
    for fmt, suffixes in formats.items():
        if suffix in suffixes:
            return fmt
    known = ", ".join(s for group in formats.values() for s in group)
    raise UserInputError(f"unknown {what} format {suffix or '(no extension)'!r} for {path}: use one of {known}")


def manifest_format(path: Path) -> str:
    return table_format(path, MANIFEST_SUFFIXES, "manifest")


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


def manifest_base(path: Path) -> Path:
    """The folder relative paths resolve against (the manifest's own, symlinks not followed)."""
    return Path(os.path.normpath(path.absolute().parent))


def iter_manifest(path: str | Path) -> Iterator[tuple[AlbumRecord | None, list[ManifestIssue]]]:
    """Stream ``(record or None, issues)``, one per data line; see the module docstring."""
    path = Path(path)
    fmt = manifest_format(path)
    _check_manifest_file(path, fmt)
    if fmt == "jsonl":
        rows = _jsonl_rows(path)
    elif fmt == "csv":
        rows = _csv_rows(path)
    else:
        rows = _open_parquet(path)
    return _records(rows, manifest_base(path), tabular=fmt != "jsonl")


def _records(rows: Iterable[Row], base: Path, tabular: bool) -> Iterator[tuple[AlbumRecord | None, list[ManifestIssue]]]:
    first_line: dict[str, int] = {}  # id -> line of its first occurrence
    for line, obj, issues in rows:
        if obj is None:
            yield None, issues
            continue
        ctx = LineContext(line, base, tabular, issues)
        record = build_record(obj, ctx)
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


def read_manifest_reporting(path: str | Path) -> list[AlbumRecord]:
    """``read_manifest``, with every skipped line or field reported on stderr as
    ``warning: FILE:LINE: ...`` (from rank 0); the usable albums are returned."""
    from genre_tagger.runs.ranks import say  # the run plumbing pulls in torch: only when reading

    records, issues = read_manifest(path)
    for issue in issues:
        say(f"warning: {issue.format(path)}")
    return records
