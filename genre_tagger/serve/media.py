"""Media files by album id and index into the manifest's own file list, never by a path
from the request.

The manifest names each album's cover and tracks; the reader has already made them
absolute and lexically normalised (relative paths against the manifest's folder). A file
is served only when it is a regular file whose real path (symlinks resolved) stays under
its *root*: the manifest's folder for files the manifest names inside it, else the
folder the manifest names the file in. So a symlink inside the catalog that leads out of
it (``covers/x.jpg -> /etc/shadow``, or a linked folder) is refused; media kept elsewhere
is named by its real, absolute path in the manifest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONTENT_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
    ".bmp": "image/bmp", ".gif": "image/gif",
    ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
    ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".aac": "audio/aac",
}


def content_type(path: str | Path) -> str:
    """The media type by extension; ``application/octet-stream`` for anything else (the
    response also says ``nosniff``, so a browser never guesses HTML from it)."""
    return CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


class MediaRefused(Exception):
    """The file cannot be served: missing, not a regular file, or leaving its root."""


@dataclass(frozen=True)
class MediaFiles:
    """One album's files as the manifest names them (absolute, normalised paths)."""

    cover: str | None
    audio: tuple[str, ...]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class MediaRoots:
    """Checks a manifest-named file before it is served (see the module docstring)."""

    def __init__(self, manifest_folder: str | Path):
        self.folder = os.path.normpath(os.path.abspath(manifest_folder))
        self.real_folder = os.path.realpath(self.folder)

    def check(self, named: str) -> str:
        """The real path to open for ``named``, or ``MediaRefused`` with the reason."""
        named = os.path.normpath(named)
        root = self.real_folder if _inside(named, self.folder) else os.path.realpath(os.path.dirname(named))
        real = os.path.realpath(named)
        if not _inside(real, root):
            raise MediaRefused("the file leads outside the catalog's folder (a symlink)")
        if not os.path.isfile(real):
            raise MediaRefused("the file is missing or not a regular file")
        return real
