"""Cheap descriptor views: hand-made audio and cover features as frozen encoders.

They need no training and no fitting, so their embeddings are cached like any frozen
encoder's, keyed by their configuration. Placed beside a learned encoder of the same
modality with ``MultiView`` (models/encoders/views.py); the head normalises them. Their
feature math (onset autocorrelation, cover features) is in ``descriptor_features``.
"""

from __future__ import annotations

import torch

from genre_tagger.models.encoders.base import Encoder, masked_mean
from genre_tagger.models.encoders.descriptor_features import COVER_FEATURES, cover_features, onset_autocorrelation
from genre_tagger.pretrained.musicnn_audio import log_uncompress

LOUDNESS_QUANTILES = (0.1, 0.5, 0.9)
# Inverse of each loader's compression of mel power.
COMPRESSIONS = {"log": torch.exp, "musicnn": log_uncompress}


class AudioDescriptors(Encoder):
    """What Essentia users compute, from the AudioLoader's log-mel crops.

    Input ``{"mels": [B, K, n_mels, F], "crop_mask": [B, K], ...}``; per crop:
    band means and spreads ``[2 n_mels]``; spectral shape (centroid, spread, flatness,
    85 % roll-off; mean and spread over frames) ``[8]``; loudness dynamics (frame log-energy
    mean, spread, 10/50/90 % quantiles, share of frames 1 spread above the mean) ``[6]``;
    onset periodicity (flux autocorrelation at lags 1..max_lag, its peak and the peak's lag,
    flux mean and spread) ``[max_lag + 4]``. Crops are averaged: ``[B, out_dim]``.

    ``compression`` says how the loader compressed mel power, so that the spectral shape and
    loudness see power again: ``"log"`` (AudioLoader: natural log) or ``"musicnn"``
    (MusicnnAudioLoader: ``log10(1 + 10000 mel)``).
    """

    modality = "audio"
    weights_from_package = True  # no weights at all: the configuration says everything
    cache_version = 2  # in the cache fingerprint: 2 = spectral flatness from power under any compression

    def __init__(self, n_mels: int = 64, max_lag: int = 48, compression: str = "log", frozen: bool = True):
        super().__init__(frozen=True)
        if compression not in COMPRESSIONS:
            raise ValueError(f"AudioDescriptors: compression must be one of {sorted(COMPRESSIONS)}, got {compression!r}")
        self.n_mels, self.max_lag, self.compression = n_mels, max_lag, compression
        self.out_dim = 2 * n_mels + 8 + 6 + max_lag + 4
        self.freeze()

    def describe(self, mels: torch.Tensor) -> torch.Tensor:
        """``[N, n_mels, F]`` log-mel crops -> ``[N, out_dim]``."""
        mels = mels.float()
        bands = torch.cat([mels.mean(dim=2), mels.std(dim=2)], dim=1)
        power = COMPRESSIONS[self.compression](mels)  # [N, M, F]
        weights = power / power.sum(dim=1, keepdim=True).clamp(min=1e-10)
        index = torch.arange(mels.shape[1], dtype=mels.dtype, device=mels.device).view(1, -1, 1) / mels.shape[1]
        centroid = (weights * index).sum(dim=1)  # [N, F]
        spread = ((weights * (index - centroid.unsqueeze(1)) ** 2).sum(dim=1)).sqrt()
        log_power = power.clamp(min=1e-10).log()
        flatness = (log_power.mean(dim=1) - power.mean(dim=1).clamp(min=1e-10).log()).exp()
        rolloff = (weights.cumsum(dim=1) < 0.85).float().mean(dim=1)
        shape = torch.stack([centroid, spread, flatness, rolloff], dim=1)  # [N, 4, F]
        shape = torch.cat([shape.mean(dim=2), shape.std(dim=2)], dim=1)
        loudness = power.sum(dim=1).clamp(min=1e-10).log()  # [N, F]
        mean, std = loudness.mean(dim=1), loudness.std(dim=1)
        quantiles = torch.quantile(loudness, torch.tensor(LOUDNESS_QUANTILES, device=mels.device), dim=1).T
        loud_share = (loudness > (mean + std).unsqueeze(1)).float().mean(dim=1)
        dynamics = torch.cat([mean[:, None], std[:, None], quantiles, loud_share[:, None]], dim=1)
        auto = onset_autocorrelation(mels, self.max_lag)
        peak, lag = auto[:, 2:].max(dim=1)  # lags >= 3 frames: beat-scale periodicity
        flux = (mels[:, :, 1:] - mels[:, :, :-1]).clamp(min=0).mean(dim=1)
        rhythm = torch.cat([auto, peak[:, None], (lag.float()[:, None] + 3) / self.max_lag,
                            flux.mean(dim=1, keepdim=True), flux.std(dim=1, keepdim=True)], dim=1)
        return torch.nan_to_num(torch.cat([bands, shape, dynamics, rhythm], dim=1))

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mels, crop_mask = inputs["mels"], inputs["crop_mask"]
        out = mels.new_zeros(*crop_mask.shape, self.out_dim, dtype=torch.float32)
        if crop_mask.any():
            out[crop_mask] = self.describe(mels[crop_mask])
        return masked_mean(out, crop_mask, dim=1)


class CoverDescriptors(Encoder):
    """Colour means and spreads, a hue histogram and a gradient-orientation histogram.

    Input ``{"pixels": [B, 3, H, W] normalised with (mean, std), "present": [B]}`` (the
    ImageLoader's batch) -> ``[B, out_dim]`` (zeros for absent covers).
    """

    modality = "image"
    weights_from_package = True

    def __init__(self, mean: tuple = (0.485, 0.456, 0.406), std: tuple = (0.229, 0.224, 0.225), frozen: bool = True):
        super().__init__(frozen=True)
        self.mean, self.std = tuple(mean), tuple(std)
        self.out_dim = COVER_FEATURES
        self.freeze()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        pixels, present = inputs["pixels"], inputs["present"]
        out = torch.zeros(len(present), self.out_dim)
        for row in torch.nonzero(present).flatten().tolist():
            out[row] = torch.from_numpy(cover_features(pixels[row].cpu(), self.mean, self.std))
        return out.to(pixels.device)
