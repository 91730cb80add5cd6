"""Output formats: jsonl (the journal itself), csv and parquet (converted from it at the end).

Record schema (docs/formats.md): ``id``, ``status`` ("ok" | "error"), ``genres`` (list),
``scores`` ({label: score}), ``modalities`` (list), ``warnings`` (list), ``error`` (error
records only; they have no genres/scores), then the manifest's extra fields. In CSV, list
and dict cells hold JSON text; in Parquet they are list<string> / map<string, double>.
A finished csv/parquet output that is re-run is read back into a journal first
(``seed_journal``), so csv and parquet are resumable too.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from genre_tagger.errors import UserInputError
from genre_tagger.tagging.journal import JournalState, dumps, fsync_dir, iter_journal, journal_ids
from genre_tagger.tagging.records import EVIDENCE, FIXED_COLUMNS


FORMATS = ("jsonl", "csv", "parquet")
SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
                  ".parquet": "parquet", ".pq": "parquet"}
JSON_COLUMNS = ("genres", "scores", "modalities", "warnings")  # lists/dicts: JSON text in CSV
# Parquet field metadata marking an extra column stored as JSON text (nested or mixed values), so
# reading it back restores the values and a resumed run does not encode them a second time.
JSON_FIELD_METADATA = {b"genre_tagger.encoding": b"json"}
PARQUET_ROW_GROUP = 10_000


def output_format(output: str | Path, requested: str | None) -> str:
    """``requested`` if given, else from the output's extension, else jsonl."""
    if requested is not None:
        if requested not in FORMATS:
            raise UserInputError(f"unknown output format {requested!r}: use one of {', '.join(FORMATS)}")
        return requested
    return SUFFIX_FORMATS.get(Path(output).suffix.lower(), "jsonl")


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
        elif key == EVIDENCE and cell:
            record[key] = _decoded_evidence(cell)
        else:
            record[key] = cell if cell != "" or key in ("id", "status") else None
    return record


def _read_parquet_rows(output: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(output)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types
        raise UserInputError(f"{output} exists but cannot be read as Parquet ({err}); delete it or choose another --output")
    schema = parquet.schema_arrow
    if not {"id", "status"} <= set(schema.names):
        raise _not_ours(output)
    as_json = {field.name for field in schema if (field.metadata or {}).items() >= JSON_FIELD_METADATA.items()}
    for batch in parquet.iter_batches(batch_size=PARQUET_ROW_GROUP):
        for row in batch.to_pylist():
            if isinstance(row.get("scores"), list):  # map columns come back as (key, value) pairs
                row["scores"] = dict(row["scores"])
            for name in as_json:
                if row.get(name) is not None:
                    row[name] = json.loads(row[name])
            if EVIDENCE in row and EVIDENCE not in as_json:  # files written before the metadata
                row[EVIDENCE] = _decoded_evidence(row[EVIDENCE])
            yield {k: v for k, v in row.items() if v is not None or k not in ("error", "genres", "scores")}


def _decoded_evidence(value: Any) -> Any:
    """``tag --explain``'s evidence, JSON text in CSV and Parquet, back as the list it was (so a
    resumed run writes it once more as the same text, not as a string of JSON)."""
    if isinstance(value, str) and value.startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


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
        fsync_dir(output.parent)
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
            fields.append(pa.field(name, pa.string(), metadata=JSON_FIELD_METADATA))
        else:
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
