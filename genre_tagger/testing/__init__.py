"""Helpers for tests: tiny, deterministic fake data written on the fly (no network, no fixtures)."""

from genre_tagger.testing.dummies import (
    can_write_m4a,
    make_record,
    truncate_file,
    write_garbage,
    write_image,
    write_m4a,
    write_png_bomb,
    write_text_file,
    write_tone,
)

__all__ = [
    "can_write_m4a",
    "make_record",
    "truncate_file",
    "write_garbage",
    "write_image",
    "write_m4a",
    "write_png_bomb",
    "write_text_file",
    "write_tone",
]
