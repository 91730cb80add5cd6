"""``AudioLoader``: album tracks -> log-mel crops, reading only the crops (policy: ``genre_tagger.data.audio``)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genre_tagger.data.audio.crops import EDGE_SECONDS, crop_starts, spread_indices, training_generator
from genre_tagger.data.audio.decoders import (
    AudioDecodeError,
    PyAVReader,
    SoundFileReader,
    check_deadline,
    open_reader,
    short_reason,
)
from genre_tagger.data.audio.ogg import ogg_cut_short
from genre_tagger.data.audio.resample import PolyphaseResampler
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord


LOG_EPS = 1e-6  # log(mel + LOG_EPS)
_UNKNOWN_LENGTH_SECONDS = 60.0  # a stream of unknown length: crops come from its first minute
_TRUNCATION_RETRIES = 3  # reopen a truncated file at most this often to read crops within its data
_MIN_TRUNCATED_SECONDS = 0.25  # a truncated file is used only when at least this much decodes


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
    reader = open_reader(path, backend="soundfile")
    count = 0
    try:
        for block in reader.blocks(limit):
            count += len(block)
            check_deadline(deadline)
    except AudioDecodeError:
        raise
    except Exception:  # noqa: BLE001 - the point where decoding breaks is what we measure
        pass
    finally:
        reader.close()
    return count


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
        hop_length: int = 512,
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
        self._resamplers: dict[int, PolyphaseResampler] = {}

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
                self._resamplers[source_rate] = PolyphaseResampler(source_rate, self.sample_rate)
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
        if ogg_cut_short(path):
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
            reader = open_reader(path)
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
                    raise AudioDecodeError(short_reason(err)) from err
                first_reason = short_reason(err)
                break
            if total is not None:
                notes.append(f"truncated or damaged: only {_seconds(total / rate)} of the "
                             f"{_seconds(announced / rate)} its header announces decode; using those")
            return crops, rate, n_bad, notes
        else:
            raise AudioDecodeError("truncated or corrupt: no consistent length after several tries")
        try:  # libsndfile opened it but failed to decode: FFmpeg may do better
            crops, rate, n_bad = self._read_crops(open_reader(path, backend="pyav"), generator, deadline)
            return crops, rate, n_bad, notes
        except Exception as pyav_err:  # noqa: BLE001 - report libsndfile's reason, seen first
            raise AudioDecodeError(first_reason) from pyav_err

    def _read_crops(
        self, reader: SoundFileReader | PyAVReader, generator: torch.Generator | None, deadline: float,
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
                    check_deadline(deadline)
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


def _empty(reader: SoundFileReader | PyAVReader) -> np.ndarray:
    return np.zeros((0, reader.channels), np.float32)


def _fit_length(waves: torch.Tensor, n: int) -> torch.Tensor:
    """Cut or zero-pad the last axis to ``n``."""
    if waves.shape[-1] >= n:
        return waves[..., :n]
    return torch.nn.functional.pad(waves, (0, n - waves.shape[-1]))
