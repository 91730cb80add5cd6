"""The crop policy: which tracks, and where in them, the loader reads (see ``genre_tagger.data.audio``)."""

from __future__ import annotations

import torch

EDGE_SECONDS = 5.0  # evaluation crops keep this far from a long track's start and end


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


def training_generator() -> torch.Generator:
    """A generator seeded from torch's global RNG: follows ``torch.manual_seed`` and the
    per-worker seeds DataLoader sets, so runs are reproducible and workers differ."""
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
