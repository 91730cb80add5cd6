"""Band-limited resampling: torchaudio's windowed-sinc kernel, without its zero taps.

``torchaudio.transforms.Resample`` convolves every window of ``orig`` input samples with a
kernel ``[new, 2 * width + orig]``: output phase ``j`` of the ``new`` per window reads the
whole window, although its sinc is non-zero on only ~``2 * width`` taps around ``j * orig /
new`` (34 of 475 for 44.1 -> 16 kHz). ``PolyphaseResampler`` keeps the same kernel and reads,
for each block of ``group`` consecutive phases, only the taps where one of them is non-zero:
a matrix product per block over the input's windows (a strided view, no copy of the
signal). Same outputs to float rounding (~1e-6); a track's two 3 s crops at 44.1 kHz take
0.57 instead of 1.37 CPU-ms on one thread.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class PolyphaseResampler:
    """``waves [..., n]`` at ``source_rate`` -> ``[..., ceil(n * target_rate / source_rate)]``,
    as ``torchaudio.transforms.Resample(source_rate, target_rate)`` computes it."""

    def __init__(self, source_rate: int, target_rate: int, group: int = 32):
        import torchaudio

        gcd = math.gcd(int(source_rate), int(target_rate))
        self.orig, self.new = int(source_rate) // gcd, int(target_rate) // gcd
        self.identity = self.orig == self.new
        if self.identity:
            return
        reference = torchaudio.transforms.Resample(source_rate, target_rate)
        kernel = reference.kernel[:, 0]  # [new, taps]
        self.width, self.taps = reference.width, kernel.shape[1]
        # per block of phases: (first tap read, kernel slice [span, phases]) over its non-zero taps
        self.blocks: list[tuple[int, torch.Tensor]] = []
        for first_phase in range(0, self.new, group):
            rows = kernel[first_phase:first_phase + group]
            used = torch.nonzero(rows.abs().sum(dim=0)).flatten()  # every phase has a non-zero centre tap
            start, stop = int(used.min()), int(used.max()) + 1
            self.blocks.append((start, rows[:, start:stop].T.contiguous()))

    def __call__(self, waves: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return waves
        length = waves.shape[-1]
        padded = F.pad(waves.reshape(-1, length), (self.width, self.width + self.orig))
        windows = padded.unfold(-1, self.taps, self.orig)  # [B, frames, taps], a view
        phases = torch.cat([windows[..., start:start + part.shape[0]] @ part for start, part in self.blocks], dim=-1)
        out = phases.reshape(padded.shape[0], -1)[:, :math.ceil(self.new * length / self.orig)]
        return out.reshape(*waves.shape[:-1], out.shape[-1])
