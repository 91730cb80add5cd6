"""File problems named before any decoder runs (shared with the image and text loaders)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def file_problem(path: Path) -> str | None:
    """A reason when ``path`` cannot even be opened as a file (checked before any decoder runs,
    whose own messages for these cases mislead: libsndfile calls an empty file "not a regular
    file (possibly a pipe?)"), else None. Shared with the image and text loaders."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as err:
        return (err.strerror or str(err)).lower()
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a pipe, socket or device)"  # opening a FIFO would block
    if info.st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def looks_like_text(path: Path) -> bool:
    """Whether a file's first KiB is printable UTF-8 text (a text file given an audio name)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
        text = head.decode("utf-8", errors="ignore" if len(head) == 1024 else "strict")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(text.strip()) and all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
