"""The fault corpus writer: hostile and real-world inputs, written on the fly (no stored binaries).

``build_fault_corpus(root, specs)`` writes a catalog folder of broken, odd and merely
unusual media files and a manifest that names them, one album per ``FaultAlbum`` spec,
and returns a ``FaultCorpus``. The specs themselves, the expectation table, live with the
tests (``tests/fault_expectations.py``); each says, album by album:

- the manifest line it is on, and its id (None for a line with no usable id);
- what ``genre-tagger validate`` reports on that line (``validate``) and what
  ``validate --deep`` adds (``deep``): severity, field and message;
- what ``genre-tagger tag`` writes for it: ``status`` ("ok", "error", or "skipped" for a
  line that gets no output record), the ``modalities`` it was tagged from, and ``tag``, a
  message that must appear among its warnings (status ok), in its error (status error) or
  in a "skipped:" line on stderr (status skipped).

The tests (``tests/test_fault_corpus.py``) run every command over the corpus and check
each album against these expectations; the table in ``docs/faults.md`` is rendered from
the same list (``render_markdown(specs)``, ``python tests/fault_expectations.py``), and a
test keeps the two equal. One source of truth.

Message patterns: ``{file}`` stands for the album's faulty file, written as ``validate``
shows it (relative to the manifest's folder) in ``validate``/``deep`` patterns and as the
loaders name it (the resolved absolute path) in ``tag`` patterns; ``{line}`` for the
album's manifest line; ``…`` for any text (numbers that depend on the encoder, long
details). ``pattern_regex`` turns a pattern into a regular expression.

Layout written under ``root``::

    root/catalog/manifest.jsonl    the corpus (UTF-8 BOM, CRLF line ends, a blank line)
    root/catalog/train.jsonl       the same lines with split=train, plus ``extra_albums``
    root/catalog/empty.jsonl       an empty manifest (0 bytes)
    root/catalog/{audio,covers,texts,media with spaces …}/   the files
    root/outside/                  files reached with ``../outside/...`` from the manifest
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from genre_tagger.testing.dummies import truncate_file, write_image, write_text_file, write_tone

__all__ = [
    "CRASH_MARKER",
    "Expect",
    "FaultAlbum",
    "FaultCorpus",
    "build_fault_corpus",
    "pattern_regex",
    "render_markdown",
]

CRASH_MARKER = "crash-me"  # tests make a decoder die (SIGSEGV) on files whose name holds this
MANIFEST_LINE = "manifest line {line}, field "  # how tag words a manifest issue in a warning


@dataclass(frozen=True)
class Expect:
    """One issue ``validate`` must print for the album's line."""

    severity: str  # "error" | "warning"
    field: str  # a schema field or a pseudo-field: <line>, <album>, <manifest>
    message: str  # a pattern (module docstring)


@dataclass
class FaultAlbum:
    """One fault: the manifest line that carries it and what each command makes of it."""

    key: str  # stable short name, e.g. "audio-zero-byte"
    group: str  # "manifest" | "audio" | "cover" | "text" | "process"
    fault: str  # what is wrong, for people
    album_id: str | None  # None: the line has no usable id
    status: str  # "ok" | "error" | "skipped"
    modalities: list[str] = field(default_factory=list)  # what tag uses (status ok)
    tag: str | None = None  # pattern in a warning / the error / a "skipped:" stderr line
    validate: list[Expect] = field(default_factory=list)
    deep: list[Expect] = field(default_factory=list)  # what --deep adds
    file: str | None = None  # the faulty file, relative to the manifest's folder (or absolute)
    line: int = 0  # 1-based physical line in the manifest (set when written)
    note: str = ""  # why, or what differs on this machine
    crash: tuple[str, str] | None = None  # (status, tag pattern) when decoding crashes its worker
    # how the line is written: a dict (JSON-encoded), or raw bytes (broken lines)
    entry: dict[str, Any] | bytes | None = None
    make: Callable[[Path], None] | None = field(default=None, repr=False)  # writes the file(s)


@dataclass
class FaultCorpus:
    """What ``build_fault_corpus`` wrote; see the module docstring."""

    root: Path
    folder: Path  # root/catalog: the manifests' folder
    manifest: Path
    train_manifest: Path
    empty_manifest: Path
    albums: list[FaultAlbum]
    not_built: list[tuple[str, str]]  # (key, reason) of faults this machine cannot produce

    def __getitem__(self, key: str) -> FaultAlbum:
        for album in self.albums:
            if album.key == key:
                return album
        raise KeyError(key)

    def at_line(self, line: int) -> FaultAlbum | None:
        return next((a for a in self.albums if a.line == line), None)

    def shown_path(self, album: FaultAlbum) -> str:
        """The faulty file as ``validate`` shows it (relative to the manifest's folder when inside)."""
        path = self.resolved_path(album)
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError:
            return str(path)

    def resolved_path(self, album: FaultAlbum) -> Path:
        """The faulty file as the loaders name it in warnings (absolute, normalised)."""
        return Path(os.path.normpath(self.folder / album.file))

    def regex(self, album: FaultAlbum, pattern: str, for_tag: bool) -> re.Pattern[str]:
        file = (str(self.resolved_path(album)) if for_tag else self.shown_path(album)) if album.file else None
        return pattern_regex(pattern, file=file, line=album.line)


def pattern_regex(pattern: str, file: str | None = None, line: int | None = None) -> re.Pattern[str]:
    """A message pattern -> regex: ``{file}``, ``{line}`` filled in, ``…`` = any text."""
    out = []
    for token in re.split(r"(\{file\}|\{line\}|…)", pattern):
        if token == "{file}":
            out.append(re.escape(file) if file is not None else ".*?")
        elif token == "{line}":
            out.append(str(line) if line is not None else r"\d+")
        elif token == "…":
            out.append(".*?")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out), re.DOTALL)


# --------------------------------------------------------------------------- file writers (for specs' ``make``)


def write_silence(path: Path, seconds: float = 2.0, rate: int = 16000) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * rate), np.float32), rate, subtype="PCM_16")


def write_non_finite(path: Path, every: bool = False) -> None:
    """A float wav with NaN and +-inf among its samples (or every sample NaN)."""
    import soundfile as sf

    rate = 16000
    t = np.arange(2 * rate) / rate
    data = (0.5 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)
    if every:
        data[:] = np.nan
    else:
        data[::97] = np.nan
        data[50::101] = np.inf
        data[75::103] = -np.inf
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, subtype="FLOAT")


def truncated_tone(seconds: float, keep: float = 0.5) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        write_tone(path, seconds=seconds, sample_rate=22050, freq=330.0)
        truncate_file(path, keep)

    return make


def renamed(real_ext: str, **tone: Any) -> Callable[[Path], None]:
    """Valid audio written as ``real_ext``, then given the album's (wrong) name."""

    def make(path: Path) -> None:
        real = path.with_name(path.name + ".tmp" + real_ext)
        write_tone(real, **tone)
        os.replace(real, path)

    return make


def make_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def write_unreadable(path: Path) -> None:
    write_tone(path, seconds=1.0)
    os.chmod(path, 0)


def make_fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def write_svg(path: Path) -> None:
    write_text_file(path, '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="300" '
                          'height="300"><rect width="300" height="300" fill="#c33"/></svg>\n')


def write_big_text(path: Path, n_bytes: int = 5_000_000) -> None:
    sentence = "A loud guitar record with heavy drums, shouted vocals and a slow, sad closing ballad. "
    text = (sentence * (n_bytes // len(sentence) + 1))[:n_bytes]
    write_text_file(path, text)


def write_truncated_jpeg(path: Path) -> None:
    write_image(path, size=(256, 256), quality=90)
    truncate_file(path, 0.5)


# --------------------------------------------------------------------------- building


Adjust = Callable[[FaultAlbum, "Path | None"], "FaultAlbum | str"]


def _entry(spec: FaultAlbum, folder: Path, split: str | None, genres: list[str] | None) -> dict[str, Any] | bytes:
    if isinstance(spec.entry, bytes):
        return spec.entry
    obj: dict[str, Any] = {}
    if spec.album_id is not None:
        obj["id"] = spec.album_id
    base = dict(spec.entry or {})
    name = _field_of(spec.file) if spec.file else None
    if name and name not in base:
        path = str(folder / spec.file) if spec.key == "manifest-absolute-path" else spec.file
        base[name] = path if name == "cover" else [path]
    obj.update(base)
    obj.setdefault("genres", genres)
    obj.setdefault("split", split)
    obj["fault"] = spec.key  # an extra field: copied to the tagging output
    return obj


def _field_of(file: str) -> str:
    """The manifest field a corpus file goes in, by its folder."""
    return {"covers": "cover", "texts": "text_files"}.get(file.split("/")[0], "audio")


def _line_bytes(entry: dict[str, Any] | bytes) -> bytes:
    return entry if isinstance(entry, bytes) else json.dumps(entry, ensure_ascii=False).encode("utf-8")


def build_fault_corpus(
    root: str | Path,
    specs: list[FaultAlbum],
    adjust: Adjust | None = None,
    labels: list[str] | None = None,
    split: str | None = "test",
    extra_albums: Iterable[dict[str, Any]] = (),
) -> FaultCorpus:
    """Write the corpus of ``specs`` under ``root`` (see the module docstring) and return it.

    ``adjust(spec, path)``: the spec as this machine will see it, or a reason it cannot be
    built here (``path`` None: before its file is written); None keeps every spec.

    ``labels``: when given, every album gets one of them as ``genres`` (cycling), so the
    manifests can be trained and evaluated on. ``split``: the split of the corpus albums in
    ``manifest.jsonl`` (``train.jsonl`` always says "train"); albums whose fault is their
    split or labels keep their own. ``extra_albums`` (dicts, paths absolute) are appended
    to ``train.jsonl`` only, after the corpus lines, so line numbers agree between the two.
    A few seconds at most; the largest files are the 20-minute wav (19 MB) and 5 MB of text.
    """
    root = Path(root)
    folder = root / "catalog"
    folder.mkdir(parents=True, exist_ok=True)
    write_tone(folder / "audio/good.wav", seconds=1.0, freq=440.0)
    write_image(folder / "covers/good.png", size=(64, 64))
    albums, not_built = [], []
    adjust = adjust or (lambda spec, path: spec)
    for spec in specs:
        path = Path(os.path.normpath(folder / spec.file)) if spec.file else None
        if spec.make is not None and path is not None:
            ready = adjust(spec, None)
            if isinstance(ready, str):
                not_built.append((spec.key, ready))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            spec.make(path)
        ready = adjust(spec, path)
        if isinstance(ready, str):
            not_built.append((spec.key, ready))
            continue
        albums.append(ready)

    def write(path: Path, album_split: str | None, extras: Iterable[dict[str, Any]]) -> None:
        lines: list[bytes] = []
        for i, album in enumerate(albums):
            if i == 3:
                lines.append(b"")  # a blank line: it counts in line numbers, and is no album
            genres = [labels[i % len(labels)]] if labels else None
            lines.append(_line_bytes(_entry(album, folder, album_split, genres)))
            album.line = len(lines)
        lines.extend(json.dumps(extra, ensure_ascii=False).encode("utf-8") for extra in extras)
        path.write_bytes(b"\xef\xbb\xbf" + b"".join(line + b"\r\n" for line in lines))

    manifest, train_manifest = folder / "manifest.jsonl", folder / "train.jsonl"
    write(train_manifest, "train", extra_albums)
    write(manifest, split, ())
    empty = folder / "empty.jsonl"
    empty.write_bytes(b"")
    return FaultCorpus(root, folder, manifest, train_manifest, empty, albums, not_built)


# --------------------------------------------------------------------------- the docs table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shown(pattern: str, spec: FaultAlbum, for_tag: bool) -> str:
    file = spec.file or ""
    if for_tag and spec.file:
        file = f"…/{Path(spec.file).name}" if not spec.file.startswith("/") else spec.file
    return pattern.replace("{file}", file)


def _issues_cell(expects: list[Expect], spec: FaultAlbum) -> str:
    if not expects:
        return "—"
    return "<br>".join(_cell(f"`{e.severity}: field '{e.field}': {_shown(e.message, spec, False)}`")
                       for e in expects)


def _tag_cell(spec: FaultAlbum) -> str:
    if spec.status == "skipped":
        return _cell(f"no record; stderr: `skipped: MANIFEST{_shown(spec.tag or '', spec, True)}`")
    if spec.status == "error":
        return _cell(f'`"error": "{_shown(spec.tag or "", spec, True)}"`')
    used = ", ".join(spec.modalities)
    warning = f'; warning `{_shown(spec.tag, spec, True)}`' if spec.tag else ""
    return _cell(f"tagged from {used}{warning}")


def render_markdown(specs: list[FaultAlbum]) -> str:
    """The table of ``docs/faults.md``: one row per fault, what ``validate`` and ``tag`` show."""
    rows = ["| group | fault | `validate` | `validate --deep` adds | `tag` status | what `tag` writes |",
            "|---|---|---|---|---|---|"]
    for spec in specs:
        status = spec.status if spec.crash is None else f"{spec.status} / {spec.crash[0]} when it crashes"
        tag = _tag_cell(spec)
        if spec.crash is not None:
            tag += _cell(f"; when the decoder crashes: `\"error\": \"{spec.crash[1].replace('{line}', 'N')}\"`")
        rows.append(f"| {spec.group} | {_cell(spec.fault)} | {_issues_cell(spec.validate, spec)} | "
                    f"{_issues_cell(spec.deep, spec)} | {status} | {tag} |")
    return "\n".join(rows).replace("{line}", "N") + "\n"
