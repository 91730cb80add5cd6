"""Audio: tracks -> mono, resampled, log-mel crops, without ever decoding a whole long file.

Item of one album: float32 ``[K, n_mels, F]``, K <= ``max_tracks * crops_per_track`` crops
of ``crop_seconds`` each (F = ``crop_samples // hop_length + 1`` frames, fixed). Batch:
``{"mels": [B, Kmax, n_mels, F], "crop_mask": [B, Kmax] bool, "present": [B] bool}``.

Crop policy (bounds time and memory per album, whatever the track lengths):

- At most ``max_tracks`` tracks per album are used; longer albums are a documented cap,
  not a silent loss: in evaluation the tracks are spread evenly over the album's list
  (deterministic), in training a random subset is drawn. A track that cannot be decoded
  is reported and the next unused track takes its place.
- Per track, ``min(crops_per_track, length // crop)`` crops (at least one). Evaluation:
  evenly spaced, deterministic, keeping ``EDGE_SECONDS`` away from both ends when the track
  is long enough (intros and fade-outs say little about genre). Training: uniform random
  starts (``torch`` RNG, so seeded DataLoader workers are reproducible and distinct).
- Only those segments are read: seek + read of ``crop`` frames each. Clips shorter than
  a crop are zero-padded at the end. Non-finite samples become 0 (with a warning; a crop
  of nothing but NaN/inf makes the track unusable); silence is fine.
- Truncated files (a cut-off download) are used as far as they decode, with a warning:
  when libsndfile's data ends (or breaks) clearly before the frame count its header
  announces, the crops are placed again within the part that decodes (at least
  ``_MIN_TRUNCATED_SECONDS``); an Ogg file whose last page is torn or not flagged
  end-of-stream is reported too (libsndfile would otherwise read it as a valid, shorter file).
- File problems are named before any decoder runs (``file_problem``): no such file, a
  folder, a pipe or device (never opened: it could block), an empty file, no permission.
- Downmix = mean over channels; resampling with a cached ``torchaudio`` Resample kernel per
  source rate; ``MelSpectrogram`` (power 2) built lazily, then ``log(mel + 1e-6)`` (natural
  log; digital silence is log(1e-6) ~ -13.8).

Decoding: libsndfile (``soundfile``) for wav, flac, ogg vorbis, mp3; PyAV (FFmpeg) for
Ogg Opus (faster there) and for anything libsndfile cannot open (m4a/aac, ...), also
seeking and decoding only what a crop needs. After a seek, lossy decoders need warm-up:
libsndfile's mp3 decoder returns ~1-1.6k wrong samples right after a bare seek (max error
0.3 against a full decode; exact from 4608 frames of pre-roll on), and AAC through PyAV is
exact from 1024 frames of pre-roll on. Both therefore decode ``_PREROLL_FRAMES`` (8192)
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
import math
import os
import stat
import struct
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord

EDGE_SECONDS = 5.0  # evaluation crops keep this far from a long track's start and end
LOG_EPS = 1e-6  # log(mel + LOG_EPS)
_PREROLL_FRAMES = 8192  # decoded and discarded before a crop in lossy formats (see above)
_UNKNOWN_LENGTH_SECONDS = 60.0  # a stream of unknown length: crops come from its first minute
_BLOCK = 1 << 16  # frames per block when streaming a whole file
_TRUNCATION_RETRIES = 3  # reopen a truncated file at most this often to read crops within its data
_MIN_TRUNCATED_SECONDS = 0.25  # a truncated file is used only when at least this much decodes
_OGG_MAX_PAGE = 65307  # bytes: 27 header + 255 lacing + 255 * 255 body
# libsndfile opens these, but FFmpeg decodes them faster (Opus: 41 vs 72 ms for 2 crops)
_PYAV_FASTER_SUBTYPES = {"OPUS"}


class AudioDecodeError(Exception):
    """A track cannot be used; the message is a short reason for the user."""


# --------------------------------------------------------------------------- decoding


def _short_reason(err: BaseException) -> str:
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
def _c_stderr_muted() -> Iterator[None]:
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


class _SoundFileReader:
    """Random access through libsndfile; ``frames`` is None when the header does not say."""

    backend = "soundfile"

    def __init__(self, path: Path):
        import soundfile as sf

        with _c_stderr_muted():  # probing a damaged file can wake libmpg123's chatter too
            self._file = sf.SoundFile(str(path))
        self.sample_rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames) if self._file.frames > 0 else None
        self.subtype = self._file.subtype
        self._preroll = _PREROLL_FRAMES if self._file.format == "MP3" else 0

    def _decoder_quiet(self) -> contextlib.AbstractContextManager:
        """MP3 (the files with a pre-roll) decoding with libmpg123's stderr chatter muted."""
        return _c_stderr_muted() if self._preroll else contextlib.nullcontext()

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
                block = self._file.read(_BLOCK if left is None else min(_BLOCK, left), dtype="float32",
                                        always_2d=True)
            if not len(block):
                return
            if left is not None:
                left -= len(block)
            yield block

    def close(self) -> None:
        self._file.close()


class _PyAVReader:
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
        begin = max(0, start - _PREROLL_FRAMES)
        try:
            self._container.seek(int((self._t0 + begin / self.sample_rate) / self._tb), stream=self._stream)
            position = begin
        except self._av.error.FFmpegError:  # unseekable stream: decode from the start
            self._container.seek(0)
            position = 0
        pieces = []
        for frame in self._container.decode(self._stream):
            _check_deadline(deadline)
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


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 1.0 else f"{value:.2f} s"


class _Truncated(Exception):
    """libsndfile's data ends before its header's frame count. ``frames``: where it ends
    (``exact``) or an upper bound on it (a read failed or came back empty there)."""

    def __init__(self, frames: int, exact: bool, announced: int, rate: int):
        super().__init__(frames)
        self.frames, self.exact, self.announced, self.rate = frames, exact, announced, rate


def _decodable_frames(path: Path, limit: int, deadline: float) -> int:
    """How many frames (at most ``limit``) libsndfile decodes from the start before it fails."""
    reader = _open_reader(path, backend="soundfile")
    count = 0
    try:
        for block in reader.blocks(limit):
            count += len(block)
            _check_deadline(deadline)
    except AudioDecodeError:
        raise
    except Exception:  # noqa: BLE001 - the point where decoding breaks is what we measure
        pass
    finally:
        reader.close()
    return count


def _ogg_cut_short(path: Path) -> bool:
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
            handle.seek(max(0, size - _OGG_MAX_PAGE))
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


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise AudioDecodeError("decoding took too long (decode_timeout_s)")


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


def _looks_like_text(path: Path) -> bool:
    """Whether a file's first KiB is printable UTF-8 text (a text file given an audio name)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
        text = head.decode("utf-8", errors="ignore" if len(head) == 1024 else "strict")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(text.strip()) and all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)


def _open_reader(path: Path, backend: str | None = None) -> _SoundFileReader | _PyAVReader:
    """libsndfile first (fast, exact seeks), PyAV for what it cannot open.

    Raises AudioDecodeError with a short reason when neither can.
    """
    problem = file_problem(path)
    if problem:
        raise AudioDecodeError(problem)
    sf_error: BaseException | None = None
    if backend in (None, "soundfile"):
        try:
            reader = _SoundFileReader(path)
        except Exception as err:  # noqa: BLE001 - libsndfile reports everything as RuntimeError
            sf_error = err
        else:
            if backend is None and reader.subtype in _PYAV_FASTER_SUBTYPES:
                try:
                    faster = _PyAVReader(path)
                except Exception:  # noqa: BLE001 - keep libsndfile then
                    return reader
                reader.close()
                return faster
            return reader
    try:
        return _PyAVReader(path)
    except AudioDecodeError:
        raise
    except ImportError as err:
        why = f"libsndfile cannot read it ({_short_reason(sf_error)}) and " if sf_error is not None else ""
        raise AudioDecodeError(f"no decoder for this format: {why}PyAV (FFmpeg) is not installed "
                               "(pip install av)") from err
    except Exception as err:  # noqa: BLE001 - FFmpeg errors come as ValueError/OSError subclasses
        reason = _short_reason(err)
        if _ogg_cut_short(path):
            raise AudioDecodeError(f"truncated Ogg file (no end page): {reason}") from err
        if sf_error is not None and ("Invalid data" in reason or reason == "End of file"):
            if _looks_like_text(path):
                reason = "not audio: the file holds text"
            else:
                sf_reason = _short_reason(sf_error)
                if "not a regular file" in sf_reason:  # libsndfile's words for "unknown format"
                    sf_reason = "neither libsndfile nor FFmpeg recognises it"
                reason = f"unrecognised or corrupt audio ({sf_reason})"
        raise AudioDecodeError(reason) from err


def decode_full(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file (or its first ``max_seconds``): float32 ``[frames, channels]``, sample rate.

    For ``validate --deep`` and the decode-only throughput floor; the loader itself never
    needs this. Raises AudioDecodeError with a short reason.
    """
    reader = _open_reader(Path(path))
    try:
        limit = None if max_seconds is None else int(max_seconds * reader.sample_rate)
        blocks = [b for b in reader.blocks(limit)]
    except AudioDecodeError:
        raise
    except Exception as err:  # noqa: BLE001
        raise AudioDecodeError(_short_reason(err)) from err
    finally:
        reader.close()
    if not blocks or sum(len(b) for b in blocks) == 0:
        raise AudioDecodeError("no audio samples")
    return np.concatenate(blocks), reader.sample_rate


def read_segment(path: str | Path, start: int, n_frames: int) -> tuple[np.ndarray, int]:
    """Frames ``[start, start + n_frames)`` of a file, decoded the way the loader decodes crops
    (seek + pre-roll): float32 ``[<= n_frames, channels]`` and the sample rate."""
    reader = _open_reader(Path(path))
    try:
        return reader.read(start, n_frames, time.monotonic() + 3600.0), reader.sample_rate
    finally:
        reader.close()


def check_audio_file(path: str | Path, timeout_s: float | None = 600.0) -> str | None:
    """None when the whole file decodes, else a short reason (streams it: memory stays small).

    Also reports a file with no samples at all, one that decodes to clearly fewer frames
    than its libsndfile header announces or an Ogg file without its end page (truncated
    downloads), NaN or infinite samples, and decoding that takes over ``timeout_s``
    (checked between blocks). Lengths that FFmpeg reports are often estimates (raw AAC: 6%
    off), so PyAV-decoded files are not checked for truncation.
    """
    path = Path(path)
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else math.inf)
    try:
        reader = _open_reader(path)
    except AudioDecodeError as err:
        return str(err)
    decoded = non_finite = 0
    expected = reader.frames if reader.backend == "soundfile" else None
    try:
        for block in reader.blocks(None):
            decoded += len(block)
            non_finite += int(block.size - np.count_nonzero(np.isfinite(block)))
            _check_deadline(deadline)
    except AudioDecodeError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001
        if decoded:
            return f"truncated or damaged: decoding fails after {decoded} of {expected or '?'} frames " \
                   f"({_short_reason(err)})"
        if expected:  # blocks are _BLOCK frames: the failing one is somewhere in the first
            return f"truncated or damaged: decoding fails within the first {min(_BLOCK, expected)} of " \
                   f"{expected} frames ({_short_reason(err)})"
        return _short_reason(err)
    finally:
        reader.close()
    if _ogg_cut_short(path):
        return "truncated: the Ogg stream ends without its last page (file cut short)"
    if decoded == 0:
        return "no audio samples"
    if expected and decoded < 0.99 * expected - 0.1 * reader.sample_rate:
        return f"truncated: decoded {decoded} of {expected} frames"
    if non_finite:
        return f"{non_finite} NaN or infinite sample values (the loader replaces them with 0)"
    return None


# --------------------------------------------------------------------------- crop policy


def spread_indices(n: int, k: int) -> list[int]:
    """``min(n, k)`` indices spread evenly over ``range(n)`` (centres of k equal bins)."""
    if k >= n:
        return list(range(n))
    return [(2 * i + 1) * n // (2 * k) for i in range(k)]


def crop_starts(
    total: int, crop: int, n_crops: int, edge: int, generator: torch.Generator | None = None
) -> list[int]:
    """Start frames of the crops of a ``total``-frame track (crop = frames per crop).

    ``min(n_crops, total // crop)`` crops, at least one. ``generator`` None: evenly
    spaced and deterministic, keeping ``edge`` frames from both ends when everything fits
    between them; else uniform random starts.
    """
    if total <= crop:
        return [0]
    count = max(1, min(n_crops, total // crop))
    if generator is not None:
        starts = torch.randint(0, total - crop + 1, (count,), generator=generator)
        return sorted(int(s) for s in starts)
    lo, hi = (edge, total - edge) if total - 2 * edge >= count * crop else (0, total)
    span = hi - lo - crop
    return [lo + span * (2 * i + 1) // (2 * count) for i in range(count)]


# --------------------------------------------------------------------------- the loader


class AudioLoader(ModalityLoader):
    """Album tracks -> log-mel crops ``[K, n_mels, F]`` (see the module docstring for the policy).

    ``decode_timeout_s`` bounds the decoding of one track cooperatively (checked between
    crops and between decoded PyAV frames; a single blocking libsndfile read is not
    interrupted, but it only ever covers one crop).
    """

    modality = "audio"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 64,
        n_fft: int = 1024,
        hop_length: int = 256,
        crop_seconds: float = 3.0,
        crops_per_track: int = 2,
        max_tracks: int = 4,
        decode_timeout_s: float = 30.0,
    ):
        if min(sample_rate, n_mels, n_fft, hop_length, crops_per_track, max_tracks) < 1 or crop_seconds <= 0:
            raise ValueError("AudioLoader: sizes and counts must be positive")
        self.sample_rate = int(sample_rate)
        self.n_mels = int(n_mels)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.crop_seconds = float(crop_seconds)
        self.crops_per_track = int(crops_per_track)
        self.max_tracks = int(max_tracks)
        self.decode_timeout_s = float(decode_timeout_s)
        self._mel: torch.nn.Module | None = None
        self._resamplers: dict[int, torch.nn.Module] = {}

    # -- shapes and settings

    @property
    def crop_samples(self) -> int:
        """Samples per crop at the target rate."""
        return int(round(self.crop_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        """F: mel frames per crop (centred STFT)."""
        return self.crop_samples // self.hop_length + 1

    @property
    def max_crops(self) -> int:
        return self.max_tracks * self.crops_per_track

    def settings(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "crop_seconds": self.crop_seconds,
            "crops_per_track": self.crops_per_track,
            "max_tracks": self.max_tracks,
            "decode_timeout_s": self.decode_timeout_s,
        }

    def __getstate__(self) -> dict[str, Any]:
        # torch transforms are rebuilt lazily in each DataLoader worker
        state = self.__dict__.copy()
        state["_mel"] = None
        state["_resamplers"] = {}
        return state

    # -- signal processing

    def _mel_transform(self) -> torch.nn.Module:
        if self._mel is None:
            import torchaudio

            self._mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=self.sample_rate,
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                n_mels=self.n_mels,
                power=2.0,
            )
        return self._mel

    def _resample(self, waves: torch.Tensor, source_rate: int) -> torch.Tensor:
        """``[k, n]`` at ``source_rate`` -> ``[k, crop_samples]`` at the target rate (cut / zero-padded)."""
        if source_rate != self.sample_rate:
            if source_rate not in self._resamplers:
                import torchaudio

                self._resamplers[source_rate] = torchaudio.transforms.Resample(source_rate, self.sample_rate)
            waves = self._resamplers[source_rate](waves)
        return _fit_length(waves, self.crop_samples)

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """Mono crops ``[k, crop_samples]`` -> float32 ``[k, n_mels, F]``, ``log(mel + 1e-6)``."""
        with torch.no_grad():
            return torch.log(self._mel_transform()(waves) + LOG_EPS).float()

    # -- reading

    def _read_track(
        self, path: Path, generator: torch.Generator | None
    ) -> tuple[np.ndarray, int, int, list[str]]:
        """The crops of one track: mono float32 ``[k, crop_frames]`` at the source rate,
        the source rate, the number of non-finite samples that were zeroed, and notes
        (a truncated file is used as far as it decodes, with a note saying so).
        """
        notes = []
        if _ogg_cut_short(path):
            notes.append("truncated: the Ogg stream ends without its last page (file cut short); "
                         "using what decodes")
        try:
            return self._read_track_checked(path, generator, notes)
        except AudioDecodeError as err:
            if notes and not str(err).startswith("truncated"):
                raise AudioDecodeError(f"truncated Ogg file (no end page): {err}") from err
            raise

    def _read_track_checked(
        self, path: Path, generator: torch.Generator | None, notes: list[str]
    ) -> tuple[np.ndarray, int, int, list[str]]:
        deadline = time.monotonic() + self.decode_timeout_s
        total = announced = None
        for _ in range(_TRUNCATION_RETRIES):
            reader = _open_reader(path)
            backend = reader.backend
            announced = announced or reader.frames
            try:
                crops, rate, n_bad = self._read_crops(reader, generator, deadline, total)
            except _Truncated as cut:
                total = cut.frames if cut.exact else _decodable_frames(path, cut.frames, deadline)
                if total < _MIN_TRUNCATED_SECONDS * cut.rate:
                    raise AudioDecodeError(f"truncated or corrupt: only {_seconds(total / cut.rate)} of the "
                                           f"{_seconds(cut.announced / cut.rate)} its header announces decode") from None
                continue
            except AudioDecodeError:
                raise
            except Exception as err:  # noqa: BLE001 - decoders raise many types; all mean "unusable"
                if backend != "soundfile":
                    raise AudioDecodeError(_short_reason(err)) from err
                first_reason = _short_reason(err)
                break
            if total is not None:
                notes.append(f"truncated or damaged: only {_seconds(total / rate)} of the "
                             f"{_seconds(announced / rate)} its header announces decode; using those")
            return crops, rate, n_bad, notes
        else:
            raise AudioDecodeError("truncated or corrupt: no consistent length after several tries")
        try:  # libsndfile opened it but failed to decode: FFmpeg may do better
            crops, rate, n_bad = self._read_crops(_open_reader(path, backend="pyav"), generator, deadline)
            return crops, rate, n_bad, notes
        except Exception as pyav_err:  # noqa: BLE001 - report libsndfile's reason, seen first
            raise AudioDecodeError(first_reason) from pyav_err

    def _read_crops(
        self, reader: _SoundFileReader | _PyAVReader, generator: torch.Generator | None, deadline: float,
        total: int | None = None,
    ) -> tuple[np.ndarray, int, int]:
        """``total``: frames to assume instead of the header's (after a truncation was found).

        Raises ``_Truncated`` when libsndfile's data ends clearly before its header's frame
        count (PyAV's counts are estimates, so they are not checked).
        """
        try:
            rate = reader.sample_rate
            crop = int(math.ceil(self.crop_seconds * rate))
            total = total or reader.frames
            if total is None:  # unknown length: crops from the first minute, decoded in one pass
                head = np.concatenate(list(reader.blocks(int(_UNKNOWN_LENGTH_SECONDS * rate))) or [_empty(reader)])
                segments = [head[s : s + crop] for s in self._starts(len(head), crop, rate, generator)]
            else:
                segments = []
                checked = reader.backend == "soundfile"
                for start in self._starts(total, crop, rate, generator):
                    _check_deadline(deadline)
                    try:
                        segment = reader.read(start, crop, deadline)
                    except Exception:
                        if checked and start > 0:  # data breaks before the crop: decode up to it
                            raise _Truncated(start, False, reader.frames or total, rate) from None
                        raise
                    end = start + len(segment)
                    if checked and len(segment) < crop and end < 0.99 * total - 0.1 * rate:
                        raise _Truncated(end if len(segment) else start, bool(len(segment)),
                                         reader.frames or total, rate)
                    segments.append(segment)
        finally:
            reader.close()
        n_samples = sum(len(s) for s in segments)
        if n_samples == 0:
            raise AudioDecodeError("no audio samples")
        crops = np.zeros((len(segments), crop), np.float32)
        for i, seg in enumerate(segments):
            # downmix to mono: mean over channels (a mat-vec product; ndarray.mean(axis=1)
            # over 2 channels is ~25x slower)
            crops[i, : len(seg)] = seg @ np.full(seg.shape[1], 1.0 / seg.shape[1], np.float32)
        bad = ~np.isfinite(crops)
        n_bad = int(bad.sum())
        if n_bad >= n_samples:
            raise AudioDecodeError("every sample read is NaN or infinite")
        if n_bad:
            crops[bad] = 0.0
        return crops, rate, n_bad

    def _starts(self, total: int, crop: int, rate: int, generator: torch.Generator | None) -> list[int]:
        return crop_starts(total, crop, self.crops_per_track, int(EDGE_SECONDS * rate), generator)

    def _track_order(self, n_tracks: int, generator: torch.Generator | None) -> list[int]:
        """Tracks to try, in order: the chosen ``max_tracks`` first, then the rest as stand-ins."""
        if generator is not None:
            return [int(i) for i in torch.randperm(n_tracks, generator=generator)]
        chosen = spread_indices(n_tracks, self.max_tracks)
        taken = set(chosen)
        return chosen + [i for i in range(n_tracks) if i not in taken]

    def load(self, record: AlbumRecord, training: bool = False) -> tuple[torch.Tensor | None, list[str]]:
        """``record.audio`` -> float32 ``[K, n_mels, F]`` or None, plus warnings naming files.

        K = crops of the (at most ``max_tracks``) usable tracks; None when no track is
        usable or the field is empty. Cost: see the module docstring (~53 ms for 4 mp3s).
        """
        paths = [Path(p) for p in (record.audio or [])]
        if not paths:
            return None, []
        generator = training_generator() if training else None
        warnings: list[str] = []
        mels: list[torch.Tensor] = []
        used = 0
        for index in self._track_order(len(paths), generator):
            if used >= self.max_tracks:
                break
            path = paths[index]
            try:
                crops, rate, n_bad, notes = self._read_track(path, generator)
            except AudioDecodeError as err:
                warnings.append(f"audio: cannot decode '{path}': {err}")
                continue
            warnings.extend(f"audio: '{path}': {note}" for note in notes)
            if n_bad:
                warnings.append(f"audio: '{path}': replaced {n_bad} non-finite samples with 0")
            mels.append(self.log_mel(self._resample(torch.from_numpy(crops), rate)))
            used += 1
        if not mels:
            return None, warnings
        return torch.cat(mels), warnings

    def collate(self, items: list[torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """``[K_i, n_mels, F]`` items (or None) -> ``mels`` [B, Kmax, n_mels, F] zero-filled,
        ``crop_mask`` [B, Kmax] bool, ``present`` [B] bool; Kmax >= 1.
        """
        k_max = max([item.shape[0] for item in items if item is not None] + [1])
        mels = torch.zeros(len(items), k_max, self.n_mels, self.n_frames, dtype=torch.float32)
        crop_mask = torch.zeros(len(items), k_max, dtype=torch.bool)
        for i, item in enumerate(items):
            if item is not None:
                mels[i, : item.shape[0]] = item
                crop_mask[i, : item.shape[0]] = True
        return {"mels": mels, "crop_mask": crop_mask, "present": crop_mask.any(dim=1)}


def _empty(reader: _SoundFileReader | _PyAVReader) -> np.ndarray:
    return np.zeros((0, reader.channels), np.float32)


def _fit_length(waves: torch.Tensor, n: int) -> torch.Tensor:
    """Cut or zero-pad the last axis to ``n``."""
    if waves.shape[-1] >= n:
        return waves[..., :n]
    return torch.nn.functional.pad(waves, (0, n - waves.shape[-1]))


def training_generator() -> torch.Generator:
    """A generator seeded from torch's global RNG: follows ``torch.manual_seed`` and the
    per-worker seeds DataLoader sets, so runs are reproducible and workers differ."""
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
