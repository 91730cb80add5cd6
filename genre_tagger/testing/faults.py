"""The fault corpus: hostile and real-world inputs, each with what every command should make of it.

``build_fault_corpus(root)`` writes, on the fly (no stored binaries), a catalog folder of
broken, odd and merely unusual media files and a manifest that names them, one album per
fault, and returns a ``FaultCorpus`` whose ``albums`` say, album by album:

- the manifest line it is on, and its id (None for a line with no usable id);
- what ``genre-tagger validate`` reports on that line (``validate``) and what
  ``validate --deep`` adds (``deep``): severity, field and message;
- what ``genre-tagger tag`` writes for it: ``status`` ("ok", "error", or "skipped" for a
  line that gets no output record), the ``modalities`` it was tagged from, and ``tag``, a
  message that must appear among its warnings (status ok), in its error (status error) or
  in a "skipped:" line on stderr (status skipped).

The tests (``tests/test_fault_corpus.py``) run every command over the corpus and check
each album against these expectations; the table in ``docs/faults.md`` is rendered from
the same list (``render_markdown()``), and a test keeps the two equal. One source of truth.

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from genre_tagger.testing.dummies import (
    can_write_m4a,
    truncate_file,
    write_garbage,
    write_image,
    write_m4a,
    write_png_bomb,
    write_text_file,
    write_tone,
)

__all__ = [
    "CRASH_MARKER",
    "Expect",
    "FaultAlbum",
    "FaultCorpus",
    "build_fault_corpus",
    "fault_specs",
    "pattern_regex",
    "render_markdown",
]

GOOD_TEXT = "A loud record: distorted guitars, pounding drums and shouted choruses."
CRASH_MARKER = "crash-me"  # tests make a decoder die (SIGSEGV) on files whose name holds this
MANIFEST_LINE = "manifest line {line}, field "  # how tag words a manifest issue in a warning

# --------------------------------------------------------------------------- expectations


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


# --------------------------------------------------------------------------- file writers


def _silence(path: Path, seconds: float = 2.0, rate: int = 16000) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * rate), np.float32), rate, subtype="PCM_16")


def _non_finite(path: Path, every: bool = False) -> None:
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


def _truncated_tone(seconds: float, keep: float = 0.5) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        write_tone(path, seconds=seconds, sample_rate=22050, freq=330.0)
        truncate_file(path, keep)

    return make


def _renamed(real_ext: str, **tone: Any) -> Callable[[Path], None]:
    """Valid audio written as ``real_ext``, then given the album's (wrong) name."""

    def make(path: Path) -> None:
        real = path.with_name(path.name + ".tmp" + real_ext)
        write_tone(real, **tone)
        os.replace(real, path)

    return make


def _folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _unreadable(path: Path) -> None:
    write_tone(path, seconds=1.0)
    os.chmod(path, 0)


def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _svg(path: Path) -> None:
    write_text_file(path, '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="300" '
                          'height="300"><rect width="300" height="300" fill="#c33"/></svg>\n')


def _big_text(path: Path, n_bytes: int = 5_000_000) -> None:
    sentence = "A loud guitar record with heavy drums, shouted vocals and a slow, sad closing ballad. "
    text = (sentence * (n_bytes // len(sentence) + 1))[:n_bytes]
    write_text_file(path, text)


def _truncated_jpeg(path: Path) -> None:
    write_image(path, size=(256, 256), quality=90)
    truncate_file(path, 0.5)


RTL_TEXT = "موسيقى روك صاخبة مع طبول قوية وغيتار كهربائي. מוזיקת רוק רועשת עם תופים."
CJK_TEXT = "激しいロック音楽、重いドラムと叫ぶボーカル。响亮的摇滚乐。시끄러운 록 음악."
EMOJI_TEXT = "🎸🤘🔥 loud guitars, 🥁 big drums, 😭 sad ballad at the end 🎶"

# --------------------------------------------------------------------------- the faults


def _good_text() -> dict[str, Any]:
    return {"texts": [GOOD_TEXT]}


def _cannot(field_name: str, reason: str) -> list[Expect]:
    return [Expect("error", field_name, "cannot decode '{file}': " + reason)]


def fault_specs() -> list[FaultAlbum]:
    """Every fault, in manifest order, before anything is written (``line`` still 0).

    Expectations are those of a machine that can encode AAC and runs as a normal user;
    ``build_fault_corpus`` adjusts the few that differ (and says why in ``note``).
    """
    A, C, T = "audio", "image", "text"
    specs: list[FaultAlbum] = []

    def add(key: str, group: str, fault: str, **kw: Any) -> None:
        kw.setdefault("album_id", key)
        specs.append(FaultAlbum(key=key, group=group, fault=fault, **kw))

    # ---- manifest
    add("manifest-bom-crlf", "manifest", "UTF-8 BOM before line 1; CRLF line ends (the whole file)",
        status="ok", modalities=[A, T], entry={"audio": "audio/good.wav", **_good_text()},
        note="line 1 is read as an album: the BOM is dropped, \\r\\n ends are stripped")
    add("manifest-invalid-json", "manifest", "invalid JSON (an unterminated line)", album_id=None,
        status="skipped", entry=b'{"id": "broken-json", "audio": ["audio/good.wav"',
        validate=[Expect("error", "<line>", "invalid JSON: …")],
        tag=":{line}: error: field '<line>': invalid JSON: …")
    add("manifest-not-an-object", "manifest", "a JSON value that is not an object", album_id=None,
        status="skipped", entry=b'["audio/good.wav", "covers/good.png"]',
        validate=[Expect("error", "<line>", "expected a JSON object {...}, got a list")],
        tag=":{line}: error: field '<line>': expected a JSON object {...}, got a list")
    add("manifest-duplicate-id-first", "manifest", "duplicate id: the first occurrence",
        album_id="dup-id", status="ok", modalities=[T], entry={"id": "dup-id", **_good_text()},
        note="the first occurrence is kept")
    add("manifest-duplicate-id", "manifest", "duplicate id: a later line with the same id",
        album_id="dup-id", status="skipped", entry={"id": "dup-id", "cover": "covers/good.png"},
        validate=[Expect("error", "id", "duplicate id 'dup-id': first used on line …; this album is skipped")],
        tag=":{line}: error: field 'id' (album dup-id): duplicate id 'dup-id': first used on line …")
    add("manifest-missing-id", "manifest", "no id", album_id=None, status="skipped",
        entry={"audio": "audio/good.wav", **_good_text()},
        validate=[Expect("error", "id", "missing id")], tag=":{line}: error: field 'id': missing id")
    add("manifest-unknown-split", "manifest", "unknown split ('validation')", status="ok", modalities=[T],
        entry={**_good_text(), "split": "validation"},
        validate=[Expect("error", "split", "unknown split 'validation': use one of train, val, test or null; "
                                           "did you mean 'val'?")],
        tag=MANIFEST_LINE + "'split': unknown split 'validation'…",
        note="the album is read with no split: tagged, but in no split for train/evaluate")
    add("manifest-path-spaces-unicode", "manifest", "a path with spaces and non-ASCII characters",
        status="ok", modalities=[A], file="media with spaces/Ünïcødé — track ♫ 01.wav",
        make=lambda p: write_tone(p, seconds=1.0, freq=523.25))
    add("manifest-absolute-path", "manifest", "an absolute path", status="ok", modalities=[A],
        file="audio/absolute.wav", make=lambda p: write_tone(p, seconds=1.0, freq=587.0),
        note="written into the manifest as an absolute path")
    add("manifest-dotdot", "manifest", "`..` leading out of the manifest's folder (allowed)",
        status="ok", modalities=[A], file="../outside/escape.wav",
        make=lambda p: write_tone(p, seconds=1.0, freq=659.0),
        note="allowed on purpose: catalogs keep media beside the folder of their manifests")
    add("manifest-unknown-label", "manifest", "a genre the model does not know", status="ok", modalities=[T],
        entry={**_good_text(), "genres": ["not-a-genre"], "split": "test"},
        note="tag ignores labels; evaluate reports the label once and leaves it out of the metrics")
    add("manifest-missing-file", "manifest", "a file that does not exist", status="ok", modalities=[T],
        file="audio/does-not-exist.wav", entry={**_good_text()},
        validate=[Expect("error", "audio", "file not found: '{file}'")],
        tag="audio: cannot decode '{file}': no such file")
    add("manifest-invalid-utf8", "manifest", "invalid UTF-8 bytes in the line", status="ok", modalities=[T],
        entry=b'{"id": "manifest-invalid-utf8", "texts": ["caf\xe9 jazz \xff and a loud drummer"]}',
        validate=[Expect("error", "<line>", "not valid UTF-8 (byte 47 of the line); bad bytes replaced: "
                                            "save the manifest as UTF-8")],
        tag=MANIFEST_LINE + "'<line>': not valid UTF-8 …")
    add("manifest-no-modality", "manifest", "no audio, cover or text at all", status="error",
        entry={}, validate=[Expect("warning", "<album>", "no audio, cover or text: nothing to tag from")],
        tag="no usable modality: album has no audio, cover or text")

    # ---- audio: broken files (the album keeps a good inline text)
    add("audio-zero-byte", "audio", "zero-byte file", status="ok", modalities=[T],
        file="audio/zero-byte.mp3", make=lambda p: write_text_file(p, b""), entry=_good_text(),
        validate=[Expect("error", "audio", "empty file (0 bytes): '{file}'")],
        tag="audio: cannot decode '{file}': empty file (0 bytes)")
    add("audio-truncated-mp3", "audio", "truncated mp3 (cut at half its bytes)", status="ok", modalities=[A],
        file="audio/truncated.mp3", make=_truncated_tone(6.0),
        deep=_cannot("audio", "truncated: decoded … of … frames"),
        tag="audio: '{file}': truncated or damaged: only … of the 6.0 s its header announces decode; using those")
    add("audio-truncated-ogg", "audio", "truncated ogg vorbis (cut at half its bytes)", status="ok",
        modalities=[A], file="audio/truncated.ogg", make=_truncated_tone(30.0),
        deep=_cannot("audio", "truncated: the Ogg stream ends without its last page (file cut short)"),
        tag="audio: '{file}': truncated: the Ogg stream ends without its last page (file cut short); "
            "using what decodes")
    add("audio-truncated-flac", "audio", "truncated flac (cut at half its bytes)", status="ok",
        modalities=[A], file="audio/truncated.flac", make=_truncated_tone(6.0),
        deep=_cannot("audio", "truncated or damaged: decoding fails … of 132300 frames (…)"),
        tag="audio: '{file}': truncated or damaged: only … of the 6.0 s its header announces decode; using those")
    add("audio-text-as-mp3", "audio", "a text file named .mp3", status="ok", modalities=[T],
        file="audio/notes.mp3", make=lambda p: write_text_file(p, "track list:\n1. intro\n2. outro\n"),
        entry=_good_text(), deep=_cannot("audio", "not audio: the file holds text"),
        tag="audio: cannot decode '{file}': not audio: the file holds text")
    add("audio-garbage", "audio", "random bytes named .ogg", status="ok", modalities=[T],
        file="audio/garbage.ogg", make=lambda p: write_garbage(p, 4096, seed=1), entry=_good_text(),
        deep=_cannot("audio", "unrecognised or corrupt audio (…)"),
        tag="audio: cannot decode '{file}': unrecognised or corrupt audio (…)")
    add("audio-all-nan", "audio", "a float wav whose every sample is NaN", status="ok", modalities=[T],
        file="audio/all-nan.wav", make=lambda p: _non_finite(p, every=True), entry=_good_text(),
        deep=_cannot("audio", "32000 NaN or infinite sample values (the loader replaces them with 0)"),
        tag="audio: cannot decode '{file}': every sample read is NaN or infinite")
    add("audio-folder", "audio", "a path that is a folder", status="ok", modalities=[T],
        file="audio/folder.wav", make=_folder, entry=_good_text(),
        validate=[Expect("error", "audio", "is a folder, not a file: '{file}'")],
        tag="audio: cannot decode '{file}': is a folder, not a file")
    add("audio-unreadable", "audio", "an unreadable file (chmod 000)", status="ok", modalities=[T],
        file="audio/unreadable.wav", make=_unreadable, entry=_good_text(),
        validate=[Expect("error", "audio", "cannot read '{file}': permission denied")],
        tag="audio: cannot decode '{file}': permission denied")
    add("audio-named-pipe", "audio", "a named pipe (FIFO): opening it would block forever", status="ok",
        modalities=[T], file="audio/pipe.wav", make=_fifo, entry=_good_text(),
        validate=[Expect("error", "audio", "not a regular file (a pipe, socket or device): '{file}'")],
        tag="audio: cannot decode '{file}': not a regular file (a pipe, socket or device)")
    add("audio-one-bad-track-of-two", "audio", "two tracks, the first one broken", status="ok",
        modalities=[A], file="audio/also-garbage.wav",
        make=lambda p: (write_garbage(p, 2048, seed=2), write_tone(p.with_name("good-second.wav"), seconds=1.0)),
        entry={"audio": ["audio/also-garbage.wav", "audio/good-second.wav"]},
        deep=_cannot("audio", "unrecognised or corrupt audio (…)"),
        tag="audio: cannot decode '{file}': unrecognised or corrupt audio (…)",
        note="the album's other track is used instead")
    add("audio-nothing-usable", "audio", "audio only, and every track broken", status="error",
        file="audio/zero-byte.mp3", entry={"audio": ["audio/zero-byte.mp3", "audio/notes.mp3"]},
        validate=[Expect("error", "audio", "empty file (0 bytes): '{file}'")],
        deep=[Expect("error", "audio", "cannot decode 'audio/notes.mp3': not audio: the file holds text")],
        tag="no usable modality: audio: cannot decode '{file}': empty file (0 bytes); audio: cannot decode "
            "…notes.mp3': not audio: the file holds text; album has no cover or text")

    # ---- audio: unusual but valid (audio only: it must be what the album is tagged from)
    add("audio-wrong-extension", "audio", "valid FLAC behind a .mp3 name", status="ok", modalities=[A],
        file="audio/really-flac.mp3", make=_renamed(".flac", seconds=1.0, freq=440.0))
    add("audio-mp3-named-wav", "audio", "valid MP3 behind a .wav name", status="ok", modalities=[A],
        file="audio/really-mp3.wav", make=_renamed(".mp3", seconds=1.0, sample_rate=22050, freq=440.0))
    add("audio-silence", "audio", "digital silence", status="ok", modalities=[A],
        file="audio/silence.wav", make=_silence)
    add("audio-one-second", "audio", "a 1-second clip (shorter than a crop is zero-padded)", status="ok",
        modalities=[A], file="audio/one-second.mp3",
        make=lambda p: write_tone(p, seconds=1.0, sample_rate=44100, freq=440.0))
    add("audio-twenty-minutes", "audio", "a 20-minute track (only crops are read)", status="ok",
        modalities=[A], file="audio/twenty-minutes.wav",
        make=lambda p: write_tone(p, seconds=1200.0, sample_rate=8000, freq=400.0))
    add("audio-8khz-mono", "audio", "8 kHz mono", status="ok", modalities=[A], file="audio/8khz-mono.mp3",
        make=lambda p: write_tone(p, seconds=2.0, sample_rate=8000, freq=300.0))
    add("audio-96khz", "audio", "96 kHz stereo", status="ok", modalities=[A], file="audio/96khz.flac",
        make=lambda p: write_tone(p, seconds=2.0, sample_rate=96000, channels=2, freq=440.0))
    add("audio-6-channels", "audio", "6 channels (5.1)", status="ok", modalities=[A],
        file="audio/six-channels.wav", make=lambda p: write_tone(p, seconds=2.0, sample_rate=48000, channels=6))
    add("audio-nan-inf", "audio", "NaN and ±inf samples in a float wav", status="ok", modalities=[A],
        file="audio/nan-inf.wav", make=_non_finite,
        deep=_cannot("audio", "… NaN or infinite sample values (the loader replaces them with 0)"),
        tag="audio: '{file}': replaced … non-finite samples with 0")
    add("audio-m4a", "audio", "m4a (AAC in MP4)", status="ok", modalities=[A], file="audio/aac.m4a",
        make=lambda p: write_m4a(p, seconds=2.0, sample_rate=22050),
        note="decoded through PyAV (FFmpeg); without PyAV the warning reads: cannot decode '…': no decoder "
             "for this format: … PyAV (FFmpeg) is not installed (pip install av)")

    # ---- covers (the album keeps a good inline text when the cover is broken)
    add("cover-truncated-jpeg", "cover", "truncated JPEG", status="ok", modalities=[T],
        file="covers/truncated.jpg", make=_truncated_jpeg, entry=_good_text(),
        deep=_cannot("cover", "truncated file"), tag="cover: cannot decode '{file}': truncated file")
    add("cover-bomb", "cover", "decompression bomb: a 20000×20000 PNG of 48 KB", status="ok", modalities=[T],
        file="covers/bomb.png", make=write_png_bomb, entry=_good_text(),
        deep=_cannot("cover", "refusing: 20000x20000 pixels exceeds max_pixels (40000000)"),
        tag="cover: refusing '{file}': 20000x20000 pixels exceeds max_pixels (40000000)",
        note="refused from the header: no pixel is decoded")
    add("cover-svg", "cover", "SVG (unsupported)", status="ok", modalities=[T], file="covers/cover.svg",
        make=_svg, entry=_good_text(),
        deep=_cannot("cover", "SVG (vector) covers are not supported: convert it to PNG or JPEG"),
        tag="cover: cannot decode '{file}': SVG (vector) covers are not supported: convert it to PNG or JPEG")
    add("cover-1x1", "cover", "a 1×1 image", status="ok", modalities=[C], file="covers/one-pixel.png",
        make=lambda p: write_image(p, size=(1, 1)))
    add("cover-cmyk", "cover", "CMYK JPEG", status="ok", modalities=[C], file="covers/cmyk.jpg",
        make=lambda p: write_image(p, mode="CMYK", size=(64, 64)))
    add("cover-16-bit-png", "cover", "16-bit greyscale PNG", status="ok", modalities=[C],
        file="covers/grey16.png", make=lambda p: write_image(p, mode="I;16", size=(64, 64)))
    add("cover-palette-transparency", "cover", "palette PNG with a transparent colour", status="ok",
        modalities=[C], file="covers/palette.png",
        make=lambda p: write_image(p, mode="P", transparency=True, size=(64, 64)))
    add("cover-animated-gif", "cover", "animated GIF (the first frame is used)", status="ok", modalities=[C],
        file="covers/animated.gif", make=lambda p: write_image(p, mode="P", frames=3, size=(64, 64)))

    # ---- texts (the album keeps a good cover when the text file is broken)
    add("text-empty-file", "text", "empty text file", status="ok", modalities=[C], file="texts/empty.txt",
        make=lambda p: write_text_file(p, b""), entry={"cover": "covers/good.png"},
        validate=[Expect("error", "text_files", "empty file (0 bytes): '{file}'")],
        tag="text_files: skipping '{file}': no text (empty or whitespace only)")
    add("text-whitespace-file", "text", "whitespace-only text file", status="ok", modalities=[C],
        file="texts/whitespace.txt", make=lambda p: write_text_file(p, " \n\t\r\n   \n"),
        entry={"cover": "covers/good.png"}, deep=_cannot("text_files", "no text (empty or whitespace only)"),
        tag="text_files: skipping '{file}': no text (empty or whitespace only)")
    add("text-invalid-utf8", "text", "invalid UTF-8 (Latin-1 bytes)", status="ok", modalities=[C],
        file="texts/latin1.txt", make=lambda p: write_text_file(p, "Café jazz, très calme.", encoding="latin-1"),
        entry={"cover": "covers/good.png"}, deep=_cannot("text_files", "not valid UTF-8 (byte 0xe9 at offset 3)"),
        tag="text_files: cannot read '{file}': not valid UTF-8 (byte 0xe9 at offset 3)")
    add("text-binary", "text", "binary data named .txt", status="ok", modalities=[C], file="texts/binary.txt",
        make=lambda p: write_garbage(p, 4096, seed=3), entry={"cover": "covers/good.png"},
        deep=_cannot("text_files", "looks binary (… NUL bytes)"),
        tag="text_files: cannot read '{file}': looks binary (… NUL bytes)")
    add("text-5mb", "text", "5 MB of text (read as evenly spaced excerpts)", status="ok", modalities=[T],
        file="texts/five-megabytes.txt", make=_big_text)
    add("text-rtl", "text", "right-to-left scripts (Arabic, Hebrew)", status="ok", modalities=[T],
        file="texts/rtl.txt", make=lambda p: write_text_file(p, RTL_TEXT))
    add("text-cjk", "text", "CJK scripts (Japanese, Chinese, Korean)", status="ok", modalities=[T],
        file="texts/cjk.txt", make=lambda p: write_text_file(p, CJK_TEXT))
    add("text-emoji", "text", "emoji", status="ok", modalities=[T], file="texts/emoji.txt",
        make=lambda p: write_text_file(p, EMOJI_TEXT))
    add("text-inline-scripts", "text", "inline texts in RTL, CJK and emoji", status="ok", modalities=[T],
        entry={"texts": [RTL_TEXT, CJK_TEXT, EMOJI_TEXT]})
    add("text-inline-blank", "text", "inline texts that are empty or whitespace only", status="error",
        entry={"texts": ["", "   \t  "]},
        validate=[Expect("warning", "<album>", "no audio, cover or text: nothing to tag from")],
        tag="no usable modality: album has no audio, cover or text",
        note="blank inline texts count as absent (no warning of their own)")

    # ---- process faults
    add("process-decoder-crash", "process", "a file that kills its decoder at C level (simulated: SIGSEGV)",
        status="ok", modalities=[A, T], file=f"audio/{CRASH_MARKER}.wav",
        make=lambda p: write_tone(p, seconds=1.0), entry=_good_text(),
        crash=("error", "manifest line {line}: decoding this album crashed a DataLoader worker process (…); "
                        "album skipped"),
        note="a valid file; the tests make its decoder die. The worker is replaced, the album is retried "
             "alone, then written as an error record; the run goes on")
    return specs


# --------------------------------------------------------------------------- building


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


def _adjust_for_this_machine(spec: FaultAlbum, path: Path | None) -> FaultAlbum | str:
    """The spec as this machine will see it, or a reason it cannot be built here."""
    if spec.key == "audio-m4a" and not can_write_m4a():
        return "this PyAV build cannot encode AAC"
    if spec.key == "audio-named-pipe" and not hasattr(os, "mkfifo"):
        return "no named pipes on this system"
    if spec.key == "audio-unreadable" and path is not None and os.access(path, os.R_OK):
        return replace(spec, modalities=["audio", "text"], validate=[], tag=None,
                       note="running as root (or with CAP_DAC_OVERRIDE): permission bits do not apply, "
                            "so the file reads normally here")
    return spec


def build_fault_corpus(
    root: str | Path,
    labels: list[str] | None = None,
    split: str | None = "test",
    extra_albums: Iterable[dict[str, Any]] = (),
) -> FaultCorpus:
    """Write the corpus under ``root`` (see the module docstring) and return its expectations.

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
    for spec in fault_specs():
        path = Path(os.path.normpath(folder / spec.file)) if spec.file else None
        if spec.make is not None and path is not None:
            ready = _adjust_for_this_machine(spec, None)
            if isinstance(ready, str):
                not_built.append((spec.key, ready))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            spec.make(path)
        ready = _adjust_for_this_machine(spec, path)
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


def render_markdown(specs: list[FaultAlbum] | None = None) -> str:
    """The table of ``docs/faults.md``: one row per fault, what ``validate`` and ``tag`` show."""
    specs = fault_specs() if specs is None else specs
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


if __name__ == "__main__":  # python -m genre_tagger.testing.faults > table.md
    print(render_markdown(), end="")
