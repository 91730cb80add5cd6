"""The audio loader for musicnn: album tracks -> musicnn's log-mel patches ``[K, 96, 187]``.

Two crop policies:

- ``patches_per_track: null`` (zero-shot tagging): each track is decoded whole, its
  log-mel computed over the whole track (as musicnn did) and cut into every patch of 187
  frames without overlap; the album's tags are the mean over all its tracks' patches.
  ``max_patches`` bounds memory: an album with more patches keeps that many, spread
  evenly over them (only albums of over ~25 minutes at the default 512).
- ``patches_per_track: k`` (the audio encoder in train / ablate / tag): k patches per
  track, read by seeking as the base ``AudioLoader`` reads crops (evenly spaced and away
  from the ends in evaluation, random in training), each 2.976 s of audio = 187 frames.
  Decoding only what is needed keeps tagging fast. ``album_patches``, when set, is a
  budget per album: at most that many tracks are used (spread over the album), each with
  ``min(k, album_patches // tracks)`` patches, so a one-track album still gets k while a
  4-track one is not 4 times as costly (musicnn's ~1.4 GMAC per patch dominates tagging).

Bad files behave as for the base loader: a warning naming the file, the next track in.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genre_tagger.data.audio import EDGE_SECONDS, AudioDecodeError, AudioLoader, crop_starts, decode_full
from genre_tagger.data.records import AlbumRecord
from genre_tagger.pretrained import musicnn_audio as mel


class MusicnnAudioLoader(AudioLoader):
    """musicnn preprocessing: 16 kHz mono, 512-point FFT, hop 256, 96 Slaney mel bands,
    ``log10(1 + 10000 * mel)``, 187-frame patches. Items ``[K, 96, 187]``; batches as
    ``AudioLoader.collate`` (``mels``, ``crop_mask``, ``present``)."""

    def __init__(
        self,
        patches_per_track: int | None = 2,
        max_tracks: int = 4,
        max_patches: int = 512,
        max_track_seconds: float = 1800.0,
        decode_timeout_s: float = 30.0,
        album_patches: int | None = None,
    ):
        if patches_per_track is not None and patches_per_track < 1:
            raise ValueError("MusicnnAudioLoader: patches_per_track must be >= 1 or null (all)")
        super().__init__(sample_rate=mel.SAMPLE_RATE, n_mels=mel.N_MELS, n_fft=mel.N_FFT, hop_length=mel.HOP,
                         crop_seconds=mel.PATCH_SAMPLES / mel.SAMPLE_RATE, crops_per_track=patches_per_track or 1,
                         max_tracks=max_tracks, decode_timeout_s=decode_timeout_s)
        self.patches_per_track = patches_per_track
        self.max_patches = int(max_patches)
        self.max_track_seconds = float(max_track_seconds)
        self.album_patches = None if album_patches is None else int(album_patches)
        self._per_track = self.crops_per_track

    @property
    def n_frames(self) -> int:
        return mel.PATCH_FRAMES

    @property
    def max_crops(self) -> int:
        return self.max_patches if self.patches_per_track is None else self.max_tracks * self.patches_per_track

    def settings(self) -> dict[str, Any]:
        return {"patches_per_track": self.patches_per_track, "max_tracks": self.max_tracks,
                "max_patches": self.max_patches, "max_track_seconds": self.max_track_seconds,
                "decode_timeout_s": self.decode_timeout_s, "album_patches": self.album_patches}

    def _resample_only(self, waves: torch.Tensor, source_rate: int) -> torch.Tensor:
        if source_rate == self.sample_rate:
            return waves
        if source_rate not in self._resamplers:
            self._resamplers[source_rate] = mel.kaiser_best_resampler(source_rate)
        with torch.no_grad():
            return self._resamplers[source_rate](waves)

    def _resample(self, waves: torch.Tensor, source_rate: int) -> torch.Tensor:
        waves = self._resample_only(waves, source_rate)[..., : self.crop_samples]
        return torch.nn.functional.pad(waves, (0, self.crop_samples - waves.shape[-1]))  # cut or zero-pad

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """Mono 16 kHz crops ``[k, n]`` -> ``[k, 96, 1 + n // 256]``."""
        return mel.log_mel(waves)

    def load(self, record: AlbumRecord, training: bool = False) -> tuple[torch.Tensor | None, list[str]]:
        if self.patches_per_track is None:
            return self._load_whole_tracks(record)
        if self.album_patches is None:
            self._per_track = self.patches_per_track
            return super().load(record, training)
        # The budget: at most album_patches tracks (spread over the album), sharing it evenly.
        view = copy.copy(self)
        view.max_tracks = max(1, min(len(record.audio or []), self.max_tracks, self.album_patches))
        view._per_track = max(1, min(self.patches_per_track, self.album_patches // view.max_tracks))
        return AudioLoader.load(view, record, training)

    def _starts(self, total: int, crop: int, rate: int, generator: torch.Generator | None) -> list[int]:
        return crop_starts(total, crop, self._per_track, int(EDGE_SECONDS * rate), generator)

    def _load_whole_tracks(self, record: AlbumRecord) -> tuple[torch.Tensor | None, list[str]]:
        paths = [Path(p) for p in (record.audio or [])]
        warnings: list[str] = []
        per_track: list[torch.Tensor] = []
        for index in self._track_order(len(paths), None):
            if len(per_track) >= self.max_tracks:
                break
            path = paths[index]
            try:
                audio, rate = decode_full(path, self.max_track_seconds)
            except AudioDecodeError as err:
                warnings.append(f"audio: cannot decode '{path}': {err}")
                continue
            wave = audio @ np.full(audio.shape[1], 1.0 / audio.shape[1], np.float32)  # mean of the channels
            bad = ~np.isfinite(wave)
            if bad.all():
                warnings.append(f"audio: cannot decode '{path}': every sample is NaN or infinite")
                continue
            if bad.any():
                wave[bad] = 0.0
                warnings.append(f"audio: '{path}': replaced {int(bad.sum())} non-finite samples with 0")
            spectrogram = mel.log_mel(self._resample_only(torch.from_numpy(wave), rate))
            per_track.append(mel.patches(spectrogram))
        if not per_track:
            return None, warnings
        patches = torch.cat(per_track)
        if patches.shape[0] > self.max_patches:
            keep = [(2 * i + 1) * patches.shape[0] // (2 * self.max_patches) for i in range(self.max_patches)]
            patches = patches[keep]
        return patches, warnings
