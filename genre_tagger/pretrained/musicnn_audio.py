"""musicnn's input, computed as musicnn computed it for training, without librosa.

musicnn (``extractor.batch_data``, and its training code) did, with librosa 0.6/0.7:

1. ``librosa.load(file, sr=16000)``: mono = mean of the channels, then resampling with
   resampy's ``kaiser_best`` filter (here: torchaudio's Kaiser-windowed sinc with the same
   width, roll-off and beta).
2. ``librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=96)``:
   centred frames (``n_fft // 2`` samples of *reflection* padding at both ends), a periodic
   Hann window, the power spectrum ``|STFT|^2`` (computed in float64, stored as complex64),
   and the Slaney mel filterbank (0 Hz to 8 kHz, Slaney's mel scale, each triangle scaled
   by ``2 / bandwidth`` in Hz). One frame per 256 samples: ``1 + n // 256`` frames.
3. ``astype(float16)``, then ``log10(10000 * mel + 1)``: with the numpy of the time, a
   float16 array times 10000 (a uint16-sized scalar) promoted to float32, so the float16
   step only rounds the mel (to ~3 significant digits); the log runs in float32.
4. Patches of 187 frames (3 s), starting every 187 frames from frame 0, the incomplete
   tail dropped; a clip's tags are the mean over its patches of the sigmoid outputs.
   (A clip shorter than one patch broke musicnn's tagger; here its frames are repeated to
   fill one patch, as musicnn's training config ``pad_short: repeat-pad`` did.)
"""

from __future__ import annotations

import functools

import numpy as np
import torch

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
PATCH_SAMPLES = (PATCH_FRAMES - 1) * HOP  # 47616: a centred STFT of this many samples has 187 frames
FLOAT16_MAX = 65504.0
# resampy's kaiser_best filter (librosa's default resampler when musicnn was trained)
KAISER_BEST = {"lowpass_filter_width": 64, "rolloff": 0.9475937167399596,
               "resampling_method": "sinc_interp_kaiser", "beta": 14.769656459379492}


def hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    """Slaney's Auditory Toolbox mel scale: linear (3 mels per 200 Hz) below 1 kHz, log above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@functools.lru_cache(maxsize=4)
def slaney_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """float32 ``[n_mels, 1 + n_fft // 2]``: triangles between consecutive mel points (in Hz),
    each scaled by ``2 / (f_high - f_low)`` (equal area), computed in float64 like librosa."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_points = np.linspace(hz_to_mel_slaney(0.0), hz_to_mel_slaney(sample_rate / 2.0), n_mels + 2)
    hz_points = mel_to_hz_slaney(mel_points)
    widths = np.diff(hz_points)
    ramps = hz_points[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (hz_points[2:] - hz_points[:-2]))[:, None]
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _hann(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float64)


def mel_power(waves: torch.Tensor) -> torch.Tensor:
    """float32 mono 16 kHz ``[..., n]`` -> mel power ``[..., 96, 1 + n // 256]`` (float32)."""
    shape = waves.shape[:-1]
    flat = waves.reshape(-1, waves.shape[-1]).double()
    spec = torch.stft(flat, N_FFT, HOP, window=_hann(N_FFT), center=True, pad_mode="reflect",
                      return_complex=True).to(torch.complex64)
    power = spec.abs().square()  # float32, like np.abs(S) ** 2 on complex64
    mel = torch.from_numpy(slaney_filterbank()) @ power
    return mel.reshape(*shape, N_MELS, mel.shape[-1])


def log_compress(mel: torch.Tensor) -> torch.Tensor:
    """musicnn's ``log10(10000 * float16(mel) + 1)`` in float32 (values above float16's range clipped)."""
    rounded = mel.clamp(max=FLOAT16_MAX).half().float()
    return torch.log10(10000.0 * rounded + 1.0)


def log_uncompress(log_mel: torch.Tensor) -> torch.Tensor:
    """The inverse of ``log_compress`` (up to its float16 rounding): mel power, >= 0."""
    return ((torch.pow(10.0, log_mel) - 1.0) / 10000.0).clamp(min=0.0)


def log_mel(waves: torch.Tensor) -> torch.Tensor:
    """float32 mono 16 kHz ``[..., n]`` -> musicnn input ``[..., 96, 1 + n // 256]``."""
    with torch.no_grad():
        return log_compress(mel_power(waves))


def patches(spectrogram: torch.Tensor, max_patches: int | None = None) -> torch.Tensor:
    """``[96, F]`` -> non-overlapping ``[K, 96, 187]`` from frame 0, tail dropped (K >= 1).

    Shorter than one patch: the frames are repeated to fill it. ``max_patches``: keep that
    many, spread evenly over the clip (a throughput cap; None keeps all, as musicnn does).
    """
    n_frames = spectrogram.shape[-1]
    if n_frames < PATCH_FRAMES:
        reps = -(-PATCH_FRAMES // max(n_frames, 1))
        return spectrogram.repeat(1, reps)[:, :PATCH_FRAMES].unsqueeze(0)
    count = n_frames // PATCH_FRAMES
    out = spectrogram[:, : count * PATCH_FRAMES].reshape(N_MELS, count, PATCH_FRAMES).permute(1, 0, 2)
    if max_patches is not None and count > max_patches:
        keep = [(2 * i + 1) * count // (2 * max_patches) for i in range(max_patches)]
        out = out[keep]
    return out.contiguous()


def kaiser_best_resampler(source_rate: int) -> torch.nn.Module:
    import torchaudio

    return torchaudio.transforms.Resample(source_rate, SAMPLE_RATE, **KAISER_BEST)
