"""Typed album records and manifest problems: the currency every stage passes around."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genre_tagger.data.modalities import get_modality

SPLITS = ("train", "val", "test")


@dataclass
class AlbumRecord:
    """One album of a manifest, with every path resolved against the manifest's folder.

    Empty lists / None mean the modality is absent for this album (normal, not an error).
    ``extra`` keeps every manifest field this schema does not know, for pass-through.
    ``line`` is the 1-based physical line (JSONL, CSV; header = 1) or Parquet row it came from.
    """

    id: str
    audio: list[Path] = field(default_factory=list)
    cover: Path | None = None
    texts: list[str] = field(default_factory=list)
    text_files: list[Path] = field(default_factory=list)
    genres: list[str] | None = None
    split: str | None = None
    artist: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    def has_modality(self, modality: str) -> bool:
        """Whether the manifest names any input for ``modality`` (a registered name)."""
        return get_modality(modality).present(self)


@dataclass
class ManifestIssue:
    """A problem found in a manifest, located by line and field.

    ``severity`` is 'error' (the album, or the whole manifest, is unusable) or 'warning'
    (the album is still usable, e.g. one missing cover file).
    """

    line: int
    field: str
    message: str
    album_id: str | None = None
    severity: str = "error"

    def format(self, source: str | Path | None = None) -> str:
        where = f"{source}:{self.line}" if source is not None else f"line {self.line}"
        album = f" (album {self.album_id})" if self.album_id else ""
        return f"{where}: {self.severity}: field '{self.field}'{album}: {self.message}"
