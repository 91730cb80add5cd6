"""The hand-made feature math behind the descriptor views (``descriptors.py``).

The model owns it: ``AudioDescriptors`` and ``CoverDescriptors`` compute their outputs
here, and their cache fingerprints assume it does not change (``cache_version`` in
``descriptors.py`` says when it did). The simple-features reference of the benchmarks
(``genre_tagger.baselines.features``) reads the same functions, so the reference and the
model's cheap views describe an album the same way.

- ``onset_autocorrelation``: the normalised autocorrelation of the spectral flux of log-mel
  crops (an onset envelope) at lags 1..``max_lag`` frames;
- ``cover_features``: RGB means and spreads, HSV saturation/value means and spreads, a
  saturation-weighted hue histogram and a magnitude-weighted gradient-orientation
  histogram (with the mean gradient magnitude) of one normalised cover.
"""

from __future__ import annotations

import numpy as np
import torch

HUE_BINS = 12
ORIENTATION_BINS = 8
COVER_FEATURES = 10 + HUE_BINS + ORIENTATION_BINS + 1  # width of ``cover_features``


def onset_autocorrelation(mels: torch.Tensor, max_lag: int) -> torch.Tensor:
    """``[N, n_mels, F]`` log-mels -> ``[N, max_lag]`` normalised autocorrelation of the spectral
    flux; lags the crops are too short for are 0."""
    flux = (mels[:, :, 1:] - mels[:, :, :-1]).clamp(min=0).mean(dim=1)
    flux = flux - flux.mean(dim=1, keepdim=True)
    energy = (flux * flux).sum(dim=1).clamp(min=1e-8)
    out = flux.new_zeros(flux.shape[0], max_lag)
    for lag in range(1, min(max_lag, flux.shape[1] - 1) + 1):
        out[:, lag - 1] = (flux[:, :-lag] * flux[:, lag:]).sum(dim=1) / energy
    return out


def hsv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[3, H, W]`` in [0, 1] -> hue in [0, 1), saturation, value, each ``[H, W]``."""
    top, _ = rgb.max(dim=0)
    bottom, _ = rgb.min(dim=0)
    spread = (top - bottom).clamp(min=1e-6)
    r, g, b = rgb
    hue = torch.where(top == r, ((g - b) / spread) % 6, torch.where(top == g, (b - r) / spread + 2, (r - g) / spread + 4))
    return (hue / 6.0) % 1.0, (top - bottom) / top.clamp(min=1e-6), top


def cover_features(pixels: torch.Tensor, mean: tuple, std: tuple) -> np.ndarray:
    """A normalised cover ``[3, H, W]`` (the ImageLoader's output) -> ``[COVER_FEATURES]``."""
    rgb = (pixels.float() * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)).clamp(0, 1)
    hue, saturation, value = hsv(rgb)
    hue_hist = torch.bincount((hue.flatten() * HUE_BINS).long().clamp(max=HUE_BINS - 1),
                              weights=saturation.flatten(), minlength=HUE_BINS)
    hue_hist = hue_hist / hue_hist.sum().clamp(min=1e-6)
    grey = rgb.mean(dim=0)
    gx, gy = grey[1:-1, 2:] - grey[1:-1, :-2], grey[2:, 1:-1] - grey[:-2, 1:-1]
    magnitude = torch.sqrt(gx * gx + gy * gy)
    angle = torch.atan2(gy, gx) % np.pi  # orientation, not direction
    orient = torch.bincount((angle.flatten() / np.pi * ORIENTATION_BINS).long().clamp(max=ORIENTATION_BINS - 1),
                            weights=magnitude.flatten(), minlength=ORIENTATION_BINS)
    orient = orient / orient.sum().clamp(min=1e-6)
    colour = torch.cat([rgb.mean(dim=(1, 2)), rgb.std(dim=(1, 2)),
                        torch.stack([saturation.mean(), saturation.std(), value.mean(), value.std()])])
    return torch.cat([colour, hue_hist, orient, magnitude.mean().view(1)]).numpy()
