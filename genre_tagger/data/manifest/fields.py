"""Field parsing: one manifest line's object -> an ``AlbumRecord`` plus issues naming each field.

A problem with one field drops that field (it reads as absent) and reports an 'error'
issue; the record is still built when its id is usable.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from genre_tagger.data.records import SPLITS, AlbumRecord, ManifestIssue

# The record's own fields; any other manifest field is kept in ``AlbumRecord.extra``.
SCHEMA_FIELDS = tuple(f.name for f in fields(AlbumRecord) if f.name not in ("extra", "line"))
# Pseudo-fields of issues: the whole line, the CSV header, the album as a whole, the whole file.
LINE, HEADER, ALBUM, MANIFEST = "<line>", "<header>", "<album>", "<manifest>"


PATH_FIELDS = ("audio", "cover", "text_files")
_SPLIT_HINTS = {
    "training": "train", "valid": "val", "validation": "val", "dev": "val",
    "eval": "test", "testing": "test",
}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class BadField(Exception):
    """A field's value cannot be used: reported as an 'error', the field reads as absent."""


@dataclass
class LineContext:
    """Where one line's fields are parsed: its location, base folder and issues."""

    line: int
    base: Path
    tabular: bool  # CSV / Parquet: list fields may hold JSON array text
    issues: list[ManifestIssue] = field(default_factory=list)
    album_id: str | None = None

    def add(self, field_name: str, message: str, severity: str = "error") -> None:
        self.issues.append(ManifestIssue(self.line, field_name, message, self.album_id, severity))


def is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", bool: "a boolean", int: "a number",
             float: "a number", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _as_list(value: Any, ctx: LineContext, *, text_fallback: str = "never") -> list[Any]:
    """One value, a list, or (CSV/Parquet) JSON array text -> a list; null -> [].

    ``text_fallback`` says when a tabular cell that starts with '[' but is no JSON array
    is taken as one plain item instead of an error: "never" (genres), "unbracketed"
    (paths: "[2001] x.wav" is a file name, '["a.wav", ' a broken array) or "always" (texts).
    """
    if is_null(value):
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str):
        raise BadField(f"expected a list or a string, got {type_name(value)}")
    text = value.strip()
    if not (ctx.tabular and text.startswith("[")):
        return [value]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        if text_fallback == "always" or (text_fallback == "unbracketed" and not text.endswith("]")):
            return [value]
        raise BadField(f"not a valid JSON array: {exc.msg} at column {exc.colno}") from None
    if not isinstance(parsed, list):
        return [value]
    if text_fallback == "always" and not all(isinstance(item, str) for item in parsed):
        return [value]
    return parsed


def _resolve(value: Any, ctx: LineContext) -> Path | None:
    """A path string -> an absolute, normalised Path (relative to the manifest folder)."""
    if is_null(value) or value == "":
        return None
    if not isinstance(value, str):
        raise BadField(f"expected a path string, got {type_name(value)}")
    if "\x00" in value:
        raise BadField("path contains a NUL character")
    if _URL.match(value):
        raise BadField(f"URLs are not supported ({value!r}): download the file and give its path")
    text = os.path.expanduser(value) if value.startswith("~") else value
    if not os.path.isabs(text):
        text = os.path.join(ctx.base, text)
    return Path(os.path.normpath(text))  # string ops first: one Path per file, not three


def _parse_id(value: Any, ctx: LineContext) -> str:
    if isinstance(value, bool) or is_null(value):
        raise BadField("missing id" if is_null(value) else "id must be a string, got a boolean")
    if isinstance(value, int):
        ctx.album_id = str(value)
        ctx.add("id", f"id is a number ({value}); read as the string '{value}' "
                "(write ids as strings: numbers lose leading zeros)", "warning")
        return str(value)
    if not isinstance(value, str):
        raise BadField(f"id must be a string, got {type_name(value)}")
    if not value.strip():
        raise BadField("id is empty")
    return value


def _parse_audio(value: Any, ctx: LineContext) -> list[Path]:
    paths = [_resolve(item, ctx) for item in _as_list(value, ctx, text_fallback="unbracketed")]
    return [p for p in paths if p is not None]


def _parse_cover(value: Any, ctx: LineContext) -> Path | None:
    if isinstance(value, (list, tuple)):
        raise BadField(f"expected one path, got a list of {len(value)}")
    return _resolve(value, ctx)


def _parse_texts(value: Any, ctx: LineContext) -> list[str]:
    items = _as_list(value, ctx, text_fallback="always")
    bad = [item for item in items if not is_null(item) and not isinstance(item, str)]
    if bad:
        raise BadField(f"texts must be strings, got {type_name(bad[0])}")
    return [item for item in items if isinstance(item, str) and item.strip()]


def _parse_genres(value: Any, ctx: LineContext) -> list[str] | None:
    items = _as_list(value, ctx)
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise BadField(f"genres must be strings, got {type_name(bad[0])}")
    genres = list(dict.fromkeys(item.strip() for item in items if item.strip()))
    return genres or None


def _parse_split(value: Any, ctx: LineContext) -> str | None:
    if is_null(value) or value == "":
        return None
    if not isinstance(value, str):
        raise BadField(f"split must be one of {', '.join(SPLITS)} or null, got {type_name(value)}")
    split = value.strip().lower()
    if split in SPLITS:
        return split
    hint = f"; did you mean '{_SPLIT_HINTS[split]}'?" if split in _SPLIT_HINTS else ""
    raise BadField(f"unknown split {value!r}: use one of {', '.join(SPLITS)} or null{hint}")


def _parse_artist(value: Any, ctx: LineContext) -> str | None:
    if is_null(value) or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise BadField(f"artist must be a string, got {type_name(value)}")
    return value if value.strip() else None


_PARSERS: dict[str, Callable[[Any, LineContext], Any]] = {
    "audio": _parse_audio,
    "cover": _parse_cover,
    "texts": _parse_texts,
    "text_files": _parse_audio,  # same rules: a list of paths, or one path
    "genres": _parse_genres,
    "split": _parse_split,
    "artist": _parse_artist,
}


def _unknown_field_issue(key: str, obj: Mapping[str, Any], ctx: LineContext) -> None:
    guess = key.strip().lower() if isinstance(key, str) else None
    if guess in SCHEMA_FIELDS and guess not in obj:
        ctx.add(key, f"unknown field kept as extra; did you mean '{guess}'?", "warning")


def build_record(obj: Mapping[str, Any], ctx: LineContext) -> AlbumRecord | None:
    """One JSON object / CSV row / Parquet row -> a record (None when it has no usable id)."""
    try:
        album_id: str | None = _parse_id(obj.get("id"), ctx)
        ctx.album_id = album_id
    except BadField as exc:
        album_id = None
        ctx.add("id", str(exc))
    values: dict[str, Any] = {}
    for name, parse in _PARSERS.items():
        try:
            values[name] = parse(obj.get(name), ctx)
        except BadField as exc:
            ctx.add(name, str(exc))
    extra = {key: value for key, value in obj.items() if key not in SCHEMA_FIELDS}
    for key in extra:
        _unknown_field_issue(key, obj, ctx)
    if album_id is None:
        return None
    return AlbumRecord(id=album_id, extra=extra, line=ctx.line, **values)
