"""The fault expectations: every hostile input of the fault corpus and what each command makes of it.

The corpus writers live in the package (``genre_tagger.testing.corpus``: file writers,
``build_fault_corpus``, ``render_markdown``); the expectations are test data and live here.
``python tests/fault_expectations.py`` prints the table of ``docs/faults.md``
(``tests/test_fault_corpus.py`` keeps the two equal).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from genre_tagger.testing.corpus import (
    CRASH_MARKER,
    MANIFEST_LINE,
    Expect,
    FaultAlbum,
    FaultCorpus,
    build_fault_corpus,
    make_fifo,
    make_folder,
    render_markdown,
    renamed,
    truncated_tone,
    write_big_text,
    write_non_finite,
    write_silence,
    write_svg,
    write_truncated_jpeg,
    write_unreadable,
)
from genre_tagger.testing.dummies import can_write_m4a, write_garbage, write_image, write_m4a, \
    write_png_bomb, write_text_file, write_tone

__all__ = ["CRASH_MARKER", "MANIFEST_LINE", "FaultCorpus", "build_corpus", "fault_specs", "render_table"]

A, C, T = "audio", "image", "text"  # modality names as tag reports them in "modalities"


GOOD_TEXT = "A loud record: distorted guitars, pounding drums and shouted choruses."
RTL_TEXT = "موسيقى روك صاخبة مع طبول قوية وغيتار كهربائي. מוזיקת רוק רועשת עם תופים."
CJK_TEXT = "激しいロック音楽、重いドラムと叫ぶボーカル。响亮的摇滚乐。시끄러운 록 음악."
EMOJI_TEXT = "🎸🤘🔥 loud guitars, 🥁 big drums, 😭 sad ballad at the end 🎶"


def _good_text() -> dict[str, Any]:
    return {"texts": [GOOD_TEXT]}


def _cannot(field_name: str, reason: str) -> list[Expect]:
    return [Expect("error", field_name, "cannot decode '{file}': " + reason)]


def _manifest_faults(add: Callable[..., None]) -> None:
    """Manifest."""
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



def _audio_broken_faults(add: Callable[..., None]) -> None:
    """Audio: broken files (the album keeps a good inline text)."""
    add("audio-zero-byte", "audio", "zero-byte file", status="ok", modalities=[T],
        file="audio/zero-byte.mp3", make=lambda p: write_text_file(p, b""), entry=_good_text(),
        validate=[Expect("error", "audio", "empty file (0 bytes): '{file}'")],
        tag="audio: cannot decode '{file}': empty file (0 bytes)")
    add("audio-truncated-mp3", "audio", "truncated mp3 (cut at half its bytes)", status="ok", modalities=[A],
        file="audio/truncated.mp3", make=truncated_tone(6.0),
        deep=_cannot("audio", "truncated: decoded … of … frames"),
        tag="audio: '{file}': truncated or damaged: only … of the 6.0 s its header announces decode; using those")
    add("audio-truncated-ogg", "audio", "truncated ogg vorbis (cut at half its bytes)", status="ok",
        modalities=[A], file="audio/truncated.ogg", make=truncated_tone(30.0),
        deep=_cannot("audio", "truncated: the Ogg stream ends without its last page (file cut short)"),
        tag="audio: '{file}': truncated: the Ogg stream ends without its last page (file cut short); "
            "using what decodes")
    add("audio-truncated-flac", "audio", "truncated flac (cut at half its bytes)", status="ok",
        modalities=[A], file="audio/truncated.flac", make=truncated_tone(6.0),
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
        file="audio/all-nan.wav", make=lambda p: write_non_finite(p, every=True), entry=_good_text(),
        deep=_cannot("audio", "32000 NaN or infinite sample values (the loader replaces them with 0)"),
        tag="audio: cannot decode '{file}': every sample read is NaN or infinite")
    add("audio-folder", "audio", "a path that is a folder", status="ok", modalities=[T],
        file="audio/folder.wav", make=make_folder, entry=_good_text(),
        validate=[Expect("error", "audio", "is a folder, not a file: '{file}'")],
        tag="audio: cannot decode '{file}': is a folder, not a file")
    add("audio-unreadable", "audio", "an unreadable file (chmod 000)", status="ok", modalities=[T],
        file="audio/unreadable.wav", make=write_unreadable, entry=_good_text(),
        validate=[Expect("error", "audio", "cannot read '{file}': permission denied")],
        tag="audio: cannot decode '{file}': permission denied")
    add("audio-named-pipe", "audio", "a named pipe (FIFO): opening it would block forever", status="ok",
        modalities=[T], file="audio/pipe.wav", make=make_fifo, entry=_good_text(),
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



def _audio_unusual_faults(add: Callable[..., None]) -> None:
    """Audio: unusual but valid (audio only: it must be what the album is tagged from)."""
    add("audio-wrong-extension", "audio", "valid FLAC behind a .mp3 name", status="ok", modalities=[A],
        file="audio/really-flac.mp3", make=renamed(".flac", seconds=1.0, freq=440.0))
    add("audio-mp3-named-wav", "audio", "valid MP3 behind a .wav name", status="ok", modalities=[A],
        file="audio/really-mp3.wav", make=renamed(".mp3", seconds=1.0, sample_rate=22050, freq=440.0))
    add("audio-silence", "audio", "digital silence", status="ok", modalities=[A],
        file="audio/silence.wav", make=write_silence)
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
        file="audio/nan-inf.wav", make=write_non_finite,
        deep=_cannot("audio", "… NaN or infinite sample values (the loader replaces them with 0)"),
        tag="audio: '{file}': replaced … non-finite samples with 0")
    add("audio-m4a", "audio", "m4a (AAC in MP4)", status="ok", modalities=[A], file="audio/aac.m4a",
        make=lambda p: write_m4a(p, seconds=2.0, sample_rate=22050),
        note="decoded through PyAV (FFmpeg); without PyAV the warning reads: cannot decode '…': no decoder "
             "for this format: … PyAV (FFmpeg) is not installed (pip install av)")



def _cover_faults(add: Callable[..., None]) -> None:
    """Covers (the album keeps a good inline text when the cover is broken)."""
    add("cover-truncated-jpeg", "cover", "truncated JPEG", status="ok", modalities=[T],
        file="covers/truncated.jpg", make=write_truncated_jpeg, entry=_good_text(),
        deep=_cannot("cover", "truncated file"), tag="cover: cannot decode '{file}': truncated file")
    add("cover-bomb", "cover", "decompression bomb: a 20000×20000 PNG of 48 KB", status="ok", modalities=[T],
        file="covers/bomb.png", make=write_png_bomb, entry=_good_text(),
        deep=_cannot("cover", "refusing: 20000x20000 pixels exceeds max_pixels (40000000)"),
        tag="cover: refusing '{file}': 20000x20000 pixels exceeds max_pixels (40000000)",
        note="refused from the header: no pixel is decoded")
    add("cover-svg", "cover", "SVG (unsupported)", status="ok", modalities=[T], file="covers/cover.svg",
        make=write_svg, entry=_good_text(),
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



def _text_faults(add: Callable[..., None]) -> None:
    """Texts (the album keeps a good cover when the text file is broken)."""
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
        file="texts/five-megabytes.txt", make=write_big_text)
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



def _process_faults(add: Callable[..., None]) -> None:
    """Process faults."""
    add("process-decoder-crash", "process", "a file that kills its decoder at C level (simulated: SIGSEGV)",
        status="ok", modalities=[A, T], file=f"audio/{CRASH_MARKER}.wav",
        make=lambda p: write_tone(p, seconds=1.0), entry=_good_text(),
        crash=("error", "manifest line {line}: decoding this album crashed a DataLoader worker process (…); "
                        "album skipped"),
        note="a valid file; the tests make its decoder die. The worker is replaced, the album is retried "
             "alone, then written as an error record; the run goes on")



def fault_specs() -> list[FaultAlbum]:
    """Every fault, in manifest order, before anything is written (``line`` still 0).

    Expectations are those of a machine that can encode AAC and runs as a normal user;
    ``adjust_for_this_machine`` adjusts the few that differ (and says why in ``note``).
    """
    specs: list[FaultAlbum] = []

    def add(key: str, group: str, fault: str, **kw: Any) -> None:
        kw.setdefault("album_id", key)
        specs.append(FaultAlbum(key=key, group=group, fault=fault, **kw))

    for group in (_manifest_faults, _audio_broken_faults, _audio_unusual_faults, _cover_faults, _text_faults,
                  _process_faults):
        group(add)
    return specs


def adjust_for_this_machine(spec: FaultAlbum, path: Path | None) -> FaultAlbum | str:
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


def build_corpus(root: str | Path, **options: Any) -> FaultCorpus:
    """``build_fault_corpus`` over these specs (options: ``labels``, ``split``, ``extra_albums``)."""
    return build_fault_corpus(root, fault_specs(), adjust_for_this_machine, **options)


def render_table() -> str:
    """The table of ``docs/faults.md``."""
    return render_markdown(fault_specs())


if __name__ == "__main__":  # python tests/fault_expectations.py > table.md
    sys.stdout.write(render_table())
