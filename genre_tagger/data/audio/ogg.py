"""Ogg probing: a cut-off Ogg file that libsndfile would read as a valid, shorter one."""

from __future__ import annotations

import os
from pathlib import Path

from genre_tagger.data.audio.files import file_problem


OGG_MAX_PAGE = 65307  # bytes: 27 header + 255 lacing + 255 * 255 body


def ogg_cut_short(path: Path) -> bool:
    """Whether an Ogg file (``OggS`` magic) lacks its end: the last page is torn, or it is
    complete but not flagged end-of-stream. libsndfile takes such a file's length from its
    last whole page, so a cut-off Ogg otherwise reads as a valid, shorter file.
    Reads the first 4 bytes and at most the last 64 KiB (an Ogg page is < 64 KiB)."""
    if file_problem(path):  # never open a pipe here: it would block
        return False
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"OggS":
                return False
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - OGG_MAX_PAGE))
            tail = handle.read()
    except OSError:
        return False
    base = size - len(tail)
    at = tail.rfind(b"OggS")
    while at >= 0:
        if at + 27 <= len(tail):
            flags, n_segments = tail[at + 5], tail[at + 26]
            if at + 27 + n_segments <= len(tail):
                body = sum(tail[at + 27 : at + 27 + n_segments])
                page_end = base + at + 27 + n_segments + body
                if page_end <= size:  # a whole page: the last one in the file, or a torn tail follows
                    return page_end != size or not flags & 0x04
        at = tail.rfind(b"OggS", 0, at)
    return True
