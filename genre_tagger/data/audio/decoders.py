"""Two decoders behind one reader interface: ``read(start, n)`` and ``blocks(max_frames)``.

Decoding: libsndfile (``soundfile``) for wav, flac, ogg vorbis, mp3; PyAV (FFmpeg) for
Ogg Opus (faster there) and for anything libsndfile cannot open (m4a/aac, ...), also
seeking and decoding only what a crop needs. After a seek, lossy decoders need warm-up:
libsndfile's mp3 decoder returns ~1-1.6k wrong samples right after a bare seek (max error
0.3 against a full decode; exact from 4608 frames of pre-roll on), and AAC through PyAV is
exact from 1024 frames of pre-roll on. Both therefore decode ``PREROLL_FRAMES`` (8192)
before each crop and discard them. libsndfile's Vorbis/Opus/FLAC/WAV seeks were
sample-exact (max error 0 against a full decode).

Measured on this 2-core CPU (30 s, 44.1 kHz stereo files, 48 kHz for opus; reading the 2
crops of 3 s that ``load`` reads; mean of 5 runs, machine otherwise idle):

==========  ======================  ======================  ==========================
file        full decode libsndfile  full decode PyAV        2 crops (seek + pre-roll)
==========  ======================  ======================  ==========================
mp3         20 ms                   57 ms                   5-6 ms libsndfile, 20 ms PyAV
ogg vorbis  41 ms                   53 ms                   11 ms libsndfile, 18 ms PyAV
opus        267 ms                  119 ms                  72 ms libsndfile, 41 ms PyAV
flac        45 ms                   40 ms                   7-10 ms libsndfile
wav         16 ms                   49 ms                   2-3 ms libsndfile
m4a (aac)   -                       63 ms                   ~10-20 ms PyAV
==========  ======================  ======================  ==========================

Segment seeking is the fastest correct choice for every format (libsndfile's mp3 seek is
fast; only its accuracy needed the pre-roll). Whole album (4 mp3 tracks of 30 s, 2 crops
each, decode + resample 44.1 -> 16 kHz + mel): ~53 ms; per track 6 ms decode, 2 ms
resample, 4 ms mel. A 10-minute 48 kHz stereo track stays bounded: 26 ms (wav), 44 ms
(mp3), ~130 ms (flac, vorbis: seeking far into them costs more) for the whole
``load``, where a full decode takes 10-17x as long (ratio measured on a busy machine).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from genre_tagger.data.audio.files import file_problem, looks_like_text
from genre_tagger.data.audio.ogg import ogg_cut_short


PREROLL_FRAMES = 8192  # decoded and discarded before a crop in lossy formats (see above)
BLOCK_FRAMES = 1 << 16  # frames per block when streaming a whole file
_PYAV_FASTER_SUBTYPES = {"OPUS"}


class AudioDecodeError(Exception):
    """A track cannot be used; the message is a short reason for the user."""


def short_reason(err: BaseException) -> str:
    """One line, without the file path and "Error :" prefixes that decoders put in messages."""
    text = " ".join(str(getattr(err, "strerror", None) or err).split())
    if text.startswith("Error opening") and "': " in text:  # libsndfile: Error opening 'path': why
        text = text.rsplit("': ", 1)[-1]
    for prefix in ("Error :", "Error:"):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
    return text.rstrip(".") or type(err).__name__


def _frame_to_array(frame: Any) -> np.ndarray:
    """A PyAV AudioFrame as float32 ``[n, channels]`` in [-1, 1] whatever its sample format."""
    arr = frame.to_ndarray()
    channels = frame.layout.nb_channels
    arr = arr.T if frame.format.is_planar else arr.reshape(-1, channels)
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float32) / float(np.iinfo(arr.dtype).max + 1)
    return arr.astype(np.float32, copy=False)


@contextlib.contextmanager
def c_stderr_muted() -> Iterator[None]:
    """Silence file descriptor 2 for the duration (C libraries write there directly).

    libmpg123 prints "part2_3_length ... too large" when a seek lands inside an MP3 bit
    reservoir (the pre-roll frames we discard absorb the damage) and "a one-frame stream?"
    when libsndfile probes random bytes: noise, since the problems that matter surface as
    exceptions, which the loaders turn into warnings naming the file.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): nothing to mute
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class SoundFileReader:
    """Random access through libsndfile; ``frames`` is None when the header does not say."""

    backend = "soundfile"

    def __init__(self, path: Path):
        import soundfile as sf

        with c_stderr_muted():  # probing a damaged file can wake libmpg123's chatter too
            self._file = sf.SoundFile(str(path))
        self.sample_rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames) if self._file.frames > 0 else None
        self.subtype = self._file.subtype
        self._preroll = PREROLL_FRAMES if self._file.format == "MP3" else 0

    def _decoder_quiet(self) -> contextlib.AbstractContextManager:
        """MP3 (the files with a pre-roll) decoding with libmpg123's stderr chatter muted."""
        return c_stderr_muted() if self._preroll else contextlib.nullcontext()

    def read(self, start: int, n: int, deadline: float) -> np.ndarray:
        """Frames ``[start, start + n)`` as float32 ``[<=n, channels]``."""
        pre = min(start, self._preroll)
        if not self._file.seekable() and start:
            raise AudioDecodeError("stream is not seekable")
        with self._decoder_quiet():
            if self._file.seekable():
                self._file.seek(start - pre)
            data = self._file.read(n + pre, dtype="float32", always_2d=True)
        return data[pre:]

    def blocks(self, max_frames: int | None) -> Iterator[np.ndarray]:
        """The file from its start, in float32 ``[n, channels]`` blocks (``max_frames`` total)."""
        # a plain read loop: SoundFile.blocks() trusts the header's frame count, which hides
        # truncated mp3s (it reported all 80000 frames of a file cut after 38639)
        self._file.seek(0)
        left = max_frames
        while left is None or left > 0:
            with self._decoder_quiet():
                block = self._file.read(BLOCK_FRAMES if left is None else min(BLOCK_FRAMES, left), dtype="float32",
                                        always_2d=True)
            if not len(block):
                return
            if left is not None:
                left -= len(block)
            yield block

    def close(self) -> None:
        self._file.close()


class PyAVReader:
    """FFmpeg through PyAV: container seek to the crop, decode until it is covered."""

    backend = "pyav"

    def __init__(self, path: Path):
        import av

        self._av = av
        self._container = av.open(str(path))
        streams = self._container.streams.audio
        if not streams:
            self._container.close()
            raise AudioDecodeError("no audio stream")
        self._stream = streams[0]
        self.sample_rate = int(self._stream.rate or self._stream.codec_context.sample_rate or 0)
        if self.sample_rate <= 0:
            self._container.close()
            raise AudioDecodeError("unknown sample rate")
        self.channels = int(self._stream.channels or 1)
        self._tb = float(self._stream.time_base) if self._stream.time_base else 1.0 / self.sample_rate
        self._t0 = float(self._stream.start_time or 0) * self._tb
        self.frames = self._frame_count()

    def _frame_count(self) -> int | None:
        if self._stream.duration:
            return int(self._stream.duration * self._tb * self.sample_rate)
        if self._container.duration:
            return int(self._container.duration / self._av.time_base * self.sample_rate)
        return None

    def _position(self, frame: Any, fallback: int) -> int:
        """Index (in samples from the stream start) of a decoded frame's first sample."""
        if frame.pts is None:
            return fallback
        return int(round((frame.pts * self._tb - self._t0) * self.sample_rate))

    def read(self, start: int, n: int, deadline: float) -> np.ndarray:
        """Frames ``[start, start + n)`` as float32 ``[<=n, channels]``."""
        begin = max(0, start - PREROLL_FRAMES)
        try:
            self._container.seek(int((self._t0 + begin / self.sample_rate) / self._tb), stream=self._stream)
            position = begin
        except self._av.error.FFmpegError:  # unseekable stream: decode from the start
            self._container.seek(0)
            position = 0
        pieces = []
        for frame in self._container.decode(self._stream):
            check_deadline(deadline)
            arr = _frame_to_array(frame)
            position = self._position(frame, position)
            lo, hi = max(start - position, 0), min(start + n - position, len(arr))
            if hi > lo:
                pieces.append(arr[lo:hi])
            position += len(arr)
            if position >= start + n:
                break
        return np.concatenate(pieces) if pieces else np.zeros((0, self.channels), np.float32)

    def blocks(self, max_frames: int | None) -> Iterator[np.ndarray]:
        """The stream from its start as float32 ``[n, channels]`` frames (``max_frames`` total)."""
        try:
            self._container.seek(0)
        except self._av.error.FFmpegError:  # not seekable: a fresh container is at its start anyway
            pass
        left = max_frames
        for frame in self._container.decode(self._stream):
            arr = _frame_to_array(frame)
            if left is not None:
                arr = arr[:left]
                left -= len(arr)
            yield arr
            if left is not None and left <= 0:
                return

    def close(self) -> None:
        self._container.close()


def check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise AudioDecodeError("decoding took too long (decode_timeout_s)")


def open_reader(path: Path, backend: str | None = None) -> SoundFileReader | PyAVReader:
    """libsndfile first (fast, exact seeks), PyAV for what it cannot open.

    Raises AudioDecodeError with a short reason when neither can.
    """
    problem = file_problem(path)
    if problem:
        raise AudioDecodeError(problem)
    sf_error: BaseException | None = None
    if backend in (None, "soundfile"):
        try:
            reader = SoundFileReader(path)
        except Exception as err:  # noqa: BLE001 - libsndfile reports everything as RuntimeError
            sf_error = err
        else:
            if backend is None and reader.subtype in _PYAV_FASTER_SUBTYPES:
                try:
                    faster = PyAVReader(path)
                except Exception:  # noqa: BLE001 - keep libsndfile then
                    return reader
                reader.close()
                return faster
            return reader
    try:
        return PyAVReader(path)
    except AudioDecodeError:
        raise
    except ImportError as err:
        why = f"libsndfile cannot read it ({short_reason(sf_error)}) and " if sf_error is not None else ""
        raise AudioDecodeError(f"no decoder for this format: {why}PyAV (FFmpeg) is not installed "
                               "(pip install av)") from err
    except Exception as err:  # noqa: BLE001 - FFmpeg errors come as ValueError/OSError subclasses
        reason = short_reason(err)
        if ogg_cut_short(path):
            raise AudioDecodeError(f"truncated Ogg file (no end page): {reason}") from err
        if sf_error is not None and ("Invalid data" in reason or reason == "End of file"):
            if looks_like_text(path):
                reason = "not audio: the file holds text"
            else:
                sf_reason = short_reason(sf_error)
                if "not a regular file" in sf_reason:  # libsndfile's words for "unknown format"
                    sf_reason = "neither libsndfile nor FFmpeg recognises it"
                reason = f"unrecognised or corrupt audio ({sf_reason})"
        raise AudioDecodeError(reason) from err


def decode_full(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file (or its first ``max_seconds``): float32 ``[frames, channels]``, sample rate.

    For ``validate --deep`` and the decode-only throughput floor; the loader itself never
    needs this. Raises AudioDecodeError with a short reason.
    """
    reader = open_reader(Path(path))
    try:
        limit = None if max_seconds is None else int(max_seconds * reader.sample_rate)
        blocks = [b for b in reader.blocks(limit)]
    except AudioDecodeError:
        raise
    except Exception as err:  # noqa: BLE001
        raise AudioDecodeError(short_reason(err)) from err
    finally:
        reader.close()
    if not blocks or sum(len(b) for b in blocks) == 0:
        raise AudioDecodeError("no audio samples")
    return np.concatenate(blocks), reader.sample_rate


def read_segment(path: str | Path, start: int, n_frames: int) -> tuple[np.ndarray, int]:
    """Frames ``[start, start + n_frames)`` of a file, decoded the way the loader decodes crops
    (seek + pre-roll): float32 ``[<= n_frames, channels]`` and the sample rate."""
    reader = open_reader(Path(path))
    try:
        return reader.read(start, n_frames, time.monotonic() + 3600.0), reader.sample_rate
    finally:
        reader.close()
