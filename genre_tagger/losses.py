"""Losses over logits ``[B, L]`` and multi-hot targets ``[B, L]``."""

from __future__ import annotations

import torch
from torch import nn


class BalancedBCEWithLogits(nn.Module):
    """``BCEWithLogitsLoss`` whose positives weigh ``(neg/pos) ** power``, capped at ``max_weight``.

    With MuMu-like imbalance (Pop on 84% of albums, rare genres on 0.06%) plain BCE learns
    to never predict rare genres; full inverse-frequency weights overfit their handful of
    positives. The square-root damping with a cap sits between. ``set_label_frequencies``
    takes the training split's positive rate per label ``[L]``.
    """

    def __init__(self, power: float = 0.5, max_weight: float = 10.0):
        super().__init__()
        self.power = power
        self.max_weight = max_weight
        self.register_buffer("pos_weight", torch.ones(0), persistent=False)

    def set_label_frequencies(self, positive_rate: torch.Tensor) -> None:
        rate = positive_rate.clamp(1e-6, 1 - 1e-6)
        self.pos_weight = ((1 - rate) / rate).pow(self.power).clamp(1.0, self.max_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = self.pos_weight if self.pos_weight.numel() else None
        return nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight)
