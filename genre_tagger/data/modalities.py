"""The modality registry: the one place that says what a modality is.

An entry names the modality (the key used in configs, batches, checkpoints and output
records), the manifest fields that carry it, the word users see in messages ("cover" for
the image modality), whether an album has it, what identifies its inputs (the embedding
cache's key) and which files it names (checked by ``validate``). Registration order is
the canonical order (``--modalities``, tables, checkpoints).

Adding a modality: ``register(Modality(...))`` with its fields, plus a ``ModalityLoader``
and an ``Encoder`` named in the config under ``data.loaders.<name>`` and
``model.encoders.<name>``. Fields the record does not have as attributes arrive in
``AlbumRecord.extra`` (see ``tests/test_modality_registry.py`` for a toy fourth modality).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Callable, Iterable

from genre_tagger.errors import UserInputError

# An ``AlbumRecord``: records.py imports this module (``has_modality``), so this one does not
# import it back.
AlbumRecord = Any
FileCheck = Callable[[Path], "str | None"]


def file_stamp(path: Path) -> list:
    """``[path, size, mtime_ns]`` (``[path, None]`` when unreadable): what changes when a file does."""
    try:
        info = os.stat(path)
        return [str(path), info.st_size, info.st_mtime_ns]
    except OSError:
        return [str(path), None]


@dataclass(frozen=True)
class Modality:
    """One modality.

    ``present(record)``: the manifest names some input for it (may still fail to decode).
    ``key_inputs(record)``: JSON-able value that changes whenever its inputs do (files are
    stamped with size and mtime). ``files(record)``: ``(manifest field, path)`` of each file
    it names. ``deep_check``: dotted path of ``f(path) -> problem | None`` that decodes one
    file (``validate --deep``), imported on first use; None when there are no files.
    """

    name: str
    word: str
    fields: tuple[str, ...]
    present: Callable[[AlbumRecord], bool]
    key_inputs: Callable[[AlbumRecord], Any]
    files: Callable[[AlbumRecord], Iterable[tuple[str, Path]]] = lambda record: ()
    deep_check: str | None = None

    def check_file(self) -> FileCheck | None:
        if self.deep_check is None:
            return None
        module, _, name = self.deep_check.rpartition(".")
        return getattr(import_module(module), name)


_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality, replace: bool = False) -> Modality:
    """Add ``modality`` (last in the canonical order); an existing name needs ``replace``."""
    if modality.name in _REGISTRY and not replace:
        raise ValueError(f"modality {modality.name!r} is already registered")
    _REGISTRY[modality.name] = modality
    return modality


def unregister(name: str) -> None:
    """Remove a modality (tests that register a toy one clean up with this)."""
    _REGISTRY.pop(name, None)


def get_modality(name: str) -> Modality:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown modality {name!r} (known: {', '.join(_REGISTRY)})") from None


def modality_names() -> tuple[str, ...]:
    """Every registered modality, in canonical order."""
    return tuple(_REGISTRY)


def canonical_order(names: Iterable[str]) -> list[str]:
    """``names`` (registered ones) sorted into the canonical order."""
    wanted = set(names)
    return [name for name in _REGISTRY if name in wanted]


def declared_modalities(record: AlbumRecord) -> list[str]:
    """The modalities the manifest names for ``record``, in canonical order."""
    return [m.name for m in _REGISTRY.values() if m.present(record)]


def words(names: Iterable[str]) -> list[str]:
    """The words users see for ``names`` (``image`` -> ``cover``)."""
    return [get_modality(name).word for name in names]


def or_list(items: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b or c"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def media_files(record: AlbumRecord) -> Iterable[tuple[str, Path, str]]:
    """``(field, path, modality)`` for every file an album names, modality by modality."""
    for modality in _REGISTRY.values():
        for field_name, path in modality.files(record):
            yield field_name, path, modality.name


def manifest_fields() -> tuple[str, ...]:
    """Every manifest field that carries some modality."""
    return tuple(f for modality in _REGISTRY.values() for f in modality.fields)


# --------------------------------------------------------------------------- the built-in three

register(Modality(
    name="audio", word="audio", fields=("audio",),
    present=lambda r: bool(r.audio),
    key_inputs=lambda r: [file_stamp(path) for path in r.audio],
    files=lambda r: (("audio", path) for path in r.audio),
    deep_check="genre_tagger.data.audio.check_audio_file",
))
register(Modality(
    name="image", word="cover", fields=("cover",),
    present=lambda r: r.cover is not None,
    key_inputs=lambda r: file_stamp(r.cover) if r.cover else None,
    files=lambda r: (("cover", r.cover),) if r.cover is not None else (),
    deep_check="genre_tagger.data.image.check_image_file",
))
register(Modality(
    name="text", word="text", fields=("texts", "text_files"),
    present=lambda r: bool(r.texts) or bool(r.text_files),
    key_inputs=lambda r: [r.texts, [file_stamp(path) for path in r.text_files]],
    files=lambda r: (("text_files", path) for path in r.text_files),
    deep_check="genre_tagger.data.text.check_text_file",
))


def parse_modalities(text: str | Iterable[str] | None, available: Iterable[str], allow_none: bool = False) -> list[str]:
    """``--modalities``: ``"audio,text"`` (or a list) -> canonical order, each one of ``available``.

    ``None`` means all of ``available``. With ``allow_none``, ``none`` (or an empty list)
    means no modality at all (the recommender's id-only model); otherwise it is an error.
    """
    available = canonical_order(available)
    if text is None:
        return available
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n) for n in text]
    names = [n for n in names if n]
    if allow_none and names in (["none"], []):
        return []
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        extra = "; or 'none' for no modality" if allow_none else ""
        raise UserInputError(f"--modalities takes a non-empty subset of {','.join(available)}{extra}; "
                             f"got {text if isinstance(text, str) else ','.join(names)!r}")
    return canonical_order(names)
