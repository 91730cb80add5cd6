"""Tiny deterministic fake-data writers for tests (in the spirit of lhotse ``testing/dummies``).

Everything here is written on the fly into a test's ``tmp_path``: no network, no stored
fixtures. The same arguments always give the same bytes-level content (up to encoders'
own determinism), so tests can assert exact shapes and stable outputs.

Audio formats written through libsndfile (``soundfile``) by file extension:

==========  ==========================  ==========================================
extension   container / codec           notes
==========  ==========================  ==========================================
``.wav``    WAV, PCM_16 (default)       any ``subtype`` of ``soundfile.available_subtypes("WAV")``
``.flac``   FLAC, PCM_16                PCM_S8 / PCM_16 / PCM_24
``.ogg``    Ogg Vorbis                  ``subtype="OPUS"`` writes Ogg Opus into ``.ogg``
``.opus``   Ogg Opus                    8, 12, 16, 24 or 48 kHz only (libopus limit)
``.mp3``    MPEG-1/2 Layer III          8 ... 48 kHz
==========  ==========================  ==========================================

``.m4a`` (AAC in MP4) goes through PyAV's encoder instead (``write_m4a``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from genre_tagger.data.records import AlbumRecord

# extension -> (soundfile format, default subtype)
_AUDIO_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_BLOCK_SECONDS = 10.0  # long files are synthesised and written in blocks: memory stays small


def tone(
    n_frames: int, sample_rate: int, channels: int = 1, freq: float = 440.0, offset: int = 0
) -> np.ndarray:
    """A sine per channel (channel c at ``freq * (1 + c / 4)``), amplitude 0.5.

    Returns float32 ``[n_frames, channels]``; ``offset`` is the index of the first frame,
    so consecutive blocks join without a phase jump.
    """
    t = (np.arange(n_frames, dtype=np.float64) + offset) / sample_rate
    freqs = freq * (1.0 + np.arange(channels) / 4.0)
    return (0.5 * np.sin(2 * np.pi * t[:, None] * freqs[None, :])).astype(np.float32)


def write_tone(
    path: str | Path,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    channels: int = 1,
    freq: float = 440.0,
    subtype: str | None = None,
) -> Path:
    """Write a sine tone; the container/codec follows the extension (see module docstring)."""
    import soundfile as sf

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _AUDIO_FORMATS:
        raise ValueError(f"write_tone: unsupported extension {suffix!r}; use one of {sorted(_AUDIO_FORMATS)}")
    fmt, default_subtype = _AUDIO_FORMATS[suffix]
    subtype = subtype or default_subtype
    if subtype == "OPUS" and sample_rate not in _OPUS_RATES:
        raise ValueError(f"write_tone: Opus needs a sample rate in {_OPUS_RATES}, got {sample_rate}")
    total = int(round(seconds * sample_rate))
    block = max(1, int(_BLOCK_SECONDS * sample_rate))
    path.parent.mkdir(parents=True, exist_ok=True)
    freqs = freq * (1.0 + np.arange(channels) / 4.0)
    # a whole number of periods per block: every block is the same, synthesise it once
    periodic = all(float(f * block / sample_rate).is_integer() for f in freqs)
    first = tone(min(block, total), sample_rate, channels, freq) if periodic else None
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=channels, format=fmt, subtype=subtype) as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            f.write(first[:n] if first is not None else tone(n, sample_rate, channels, freq, offset=start))
    return path


def can_write_m4a() -> bool:
    """Whether the installed PyAV can encode AAC into MP4 (``write_m4a`` works)."""
    try:
        import av

        av.codec.Codec("aac", "w")
    except Exception:  # noqa: BLE001 - any failure means "cannot"
        return False
    return True


def write_m4a(
    path: str | Path,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    channels: int = 1,
    freq: float = 440.0,
) -> Path:
    """Write a sine tone as AAC through PyAV: MP4 container for ``.m4a``/``.mp4``, raw ADTS
    stream for ``.aac`` (no index: its length is only an estimate, as with real ones).

    Raises RuntimeError when PyAV has no AAC encoder (check ``can_write_m4a()`` first).
    """
    if not can_write_m4a():
        raise RuntimeError("write_m4a: this PyAV build cannot encode AAC")
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = int(round(seconds * sample_rate))
    layout = "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}c"
    container_format = "adts" if path.suffix.lower() == ".aac" else "mp4"
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("aac", rate=sample_rate, layout=layout)
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, total, frame_size):
            block = tone(min(frame_size, total - start), sample_rate, channels, freq, offset=start)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T), format="fltp", layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _rgb_pattern(size: tuple[int, int]) -> np.ndarray:
    """Deterministic colourful gradient with a dark square: uint8 ``[H, W, 3]``."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [255 * x / max(width - 1, 1), 255 * y / max(height - 1, 1), 255 * (1 - x / max(width - 1, 1))], axis=-1
    )
    rgb[height // 4 : height // 2, width // 4 : width // 2] = 20
    return rgb.astype(np.uint8)


def _image_in_mode(mode: str, size: tuple[int, int], transparency: bool) -> Image.Image:
    rgb = Image.fromarray(_rgb_pattern(size))
    width, height = size
    if mode == "RGB":
        return rgb
    if mode in ("RGBA", "LA"):
        alpha = Image.fromarray(np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1)))
        image = rgb.convert(mode)
        image.putalpha(alpha)
        return image
    if mode == "P":
        image = rgb.quantize(colors=16)
        if transparency:
            image.info["transparency"] = 0  # palette index 0 is see-through
        return image
    if mode == "I;16":
        ramp = np.tile(np.linspace(0, 65535, width), (height, 1)).astype(np.uint16)
        return Image.fromarray(ramp)  # uint16 -> "I;16"
    if mode == "I":
        ramp = np.tile(np.linspace(0, 65535, width), (height, 1)).astype(np.int32)
        return Image.fromarray(ramp)  # int32 -> "I"
    return rgb.convert(mode)  # L, 1, CMYK, YCbCr, ...


def write_image(
    path: str | Path,
    mode: str = "RGB",
    size: tuple[int, int] = (64, 48),
    transparency: bool = False,
    frames: int = 1,
    **save_kwargs: Any,
) -> Path:
    """Write a patterned image in ``mode``; the format follows the extension (jpg, png, webp, bmp, gif, tiff).

    ``size`` is (width, height). ``transparency`` marks palette index 0 transparent (mode
    "P"). ``frames`` > 1 writes an animated image (gif/webp/png) whose later frames are
    colour-inverted, so "first frame only" is checkable. Combinations the format cannot
    store raise PIL's own error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = _image_in_mode(mode, size, transparency)
    if transparency and mode == "P":
        save_kwargs.setdefault("transparency", 0)
    if frames > 1:
        inverted = Image.fromarray(255 - _rgb_pattern(size))
        extra = [inverted.convert(image.mode) if image.mode != "P" else inverted.quantize(colors=16)]
        extra = extra * (frames - 1)
        image.save(path, save_all=True, append_images=extra, **save_kwargs)
    else:
        image.save(path, **save_kwargs)
    return path


def write_png_bomb(path: str | Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid, all-black 1-bit PNG of ``width`` x ``height`` that is only a few KB on disk.

    Decoding it would take ``width * height`` bytes (400 MB by default): a decompression
    bomb for loaders that must refuse from the header.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def write_text_file(path: str | Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``text`` (str encoded with ``encoding``, or raw bytes as given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def write_garbage(path: str | Path, n_bytes: int = 2048, seed: int = 0) -> Path:
    """Random bytes under any name: a file no decoder recognises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes())
    return path


def truncate_file(path: str | Path, keep_fraction: float = 0.5) -> Path:
    """Cut a file to its first ``keep_fraction`` of bytes (a broken download)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def _as_path_list(value: Any, root: Path) -> list[Path]:
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [root / v for v in values]


def make_record(tmp_path: str | Path, **fields: Any) -> AlbumRecord:
    """An ``AlbumRecord`` with paths resolved against ``tmp_path`` (as a manifest would).

    ``audio`` / ``text_files`` take one path or a list, ``cover`` a path, ``texts`` a string
    or a list; any other keyword goes to the record as is (``id`` defaults to "album-1").
    """
    root = Path(tmp_path)
    fields.setdefault("id", "album-1")
    fields["audio"] = _as_path_list(fields.get("audio"), root)
    fields["text_files"] = _as_path_list(fields.get("text_files"), root)
    cover = fields.get("cover")
    fields["cover"] = root / cover if cover is not None else None
    texts = fields.get("texts")
    fields["texts"] = [] if texts is None else [texts] if isinstance(texts, str) else list(texts)
    return AlbumRecord(**fields)
