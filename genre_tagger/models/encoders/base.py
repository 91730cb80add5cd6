"""The one encoder interface shared by every modality (timm-style pooled features)."""

from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """A modality encoder: ``forward(inputs) -> [B, out_dim]``.

    ``inputs`` is the dict a ``ModalityLoader.collate`` made (it always holds
    ``"present"``: ``[B]`` bool). Rows that are not present may hold anything; fusion
    masks them out. ``frozen`` encoders never train and run under no_grad, which makes
    their outputs cacheable. ``weights_from_package`` marks frozen weights that any
    machine can rebuild from an installed package, so checkpoints need not store them.
    """

    modality: str = ""
    out_dim: int = 0
    weights_from_package: bool = False

    def __init__(self, frozen: bool = False):
        super().__init__()
        self.frozen = frozen

    def freeze(self) -> None:
        """Stop training this encoder (eval mode, no gradients): its outputs become cacheable."""
        self.frozen = True
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "Encoder":
        # A frozen encoder stays in eval mode (batch-norm statistics, dropout) always.
        return super().train(mode and not self.frozen)

    def encode(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``forward`` under no_grad when frozen. Returns ``[B, out_dim]``."""
        if self.frozen:
            with torch.no_grad():
                return self(inputs)
        return self(inputs)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``values`` over ``dim`` where ``mask`` is true; 0 where nothing is.

    ``mask`` has the shape of ``values`` without its trailing feature dimension.
    """
    weights = mask.to(values.dtype).unsqueeze(-1)
    total = (values * weights).sum(dim=dim)
    count = weights.sum(dim=dim).clamp(min=1.0)
    return total / count
