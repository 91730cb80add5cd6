"""``write_manifest``: albums (records or dicts) -> JSON Lines, atomically, paths relative where possible."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from genre_tagger.data.manifest.fields import PATH_FIELDS, is_null
from genre_tagger.data.manifest.readers import manifest_base, manifest_format
from genre_tagger.data.manifest.validation import shown_path
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError


def _relative(path: str | Path, base: Path) -> str:
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()  # already relative to the manifest folder
    return shown_path(Path(os.path.normpath(path)), base)


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
    if is_null(obj.get("id")):
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
    if manifest_format(path) != "jsonl":
        raise UserInputError(f"write_manifest writes JSON Lines: use a .jsonl path, not {path.name}")
    base = manifest_base(path)
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
