"""Reading what other commands wrote into the served catalog: the tag output (by DuckDB, in
any of `tag`'s formats) and the audit's review tables."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from genre_tagger.errors import UserInputError

# The tag record's columns (CONTRACT §4) and their DuckDB types; ``primary`` with a taxonomy.
TAG_COLUMNS = {"id": "VARCHAR", "status": "VARCHAR", "genres": "VARCHAR[]", "scores": "MAP(VARCHAR, DOUBLE)",
               "modalities": "VARCHAR[]", "warnings": "VARCHAR[]", "error": "VARCHAR", "primary": "VARCHAR"}
AUDIT_FILES = ("label_review.csv", "fill_priorities.csv")
AUDIT_ROWS = 500


def tag_source(db: duckdb.DuckDBPyConnection, tags: Path, fmt: str) -> str:
    """A SELECT over the tag output with the columns of ``TAG_COLUMNS`` (NULL where absent)."""
    path = "'" + str(tags).replace("'", "''") + "'"
    try:
        if fmt == "jsonl":
            columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in TAG_COLUMNS.items()) + "}"
            return (f"SELECT * FROM read_json({path}, format='newline_delimited', ignore_errors=true, "
                    f"maximum_object_size=67108864, columns={columns})")
        if fmt == "parquet":
            found = {row[0] for row in db.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall()}
            reader = f"read_parquet({path})"
        else:
            found = {row[0] for row in db.execute(
                f"DESCRIBE SELECT * FROM read_csv({path}, header=true, all_varchar=true)").fetchall()}
            reader = f"read_csv({path}, header=true, all_varchar=true, quote='\"', escape='\"')"
    except duckdb.Error as err:
        raise UserInputError(f"cannot read tags file {tags} as {fmt}: {str(err).splitlines()[0]}") from err
    if not {"id", "status"} <= found:
        raise UserInputError(f"{tags} is not an output of `genre-tagger tag` (no id/status columns)")
    selected = []
    for name, kind in TAG_COLUMNS.items():
        if name not in found:
            selected.append(f'NULL::{kind} AS "{name}"')
        elif fmt == "csv" and kind != "VARCHAR":  # JSON text cells
            selected.append(f'CAST(nullif("{name}", \'\')::JSON AS {kind}) AS "{name}"')
        else:
            selected.append(f'"{name}"::{kind} AS "{name}"')
    return f"SELECT {', '.join(selected)} FROM {reader}"


def read_audit(folder: Path) -> dict:
    """The audit's review tables that exist in ``folder`` (``label_review.csv``,
    ``fill_priorities.csv``): ``{name: {"columns", "rows" (the first AUDIT_ROWS), "total"}}``."""
    if not folder.is_dir():
        raise UserInputError(f"audit folder not found: {folder}" if not folder.exists() else
                             f"--audit {folder} is not a folder")
    tables = {}
    for name in AUDIT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                columns = next(reader, [])
                rows, total = [], 0
                for row in reader:
                    total += 1
                    if len(rows) < AUDIT_ROWS:
                        rows.append(row)
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise UserInputError(f"cannot read {path}: {err}") from err
        tables[Path(name).stem] = {"columns": columns, "rows": rows, "total": total}
    return tables
