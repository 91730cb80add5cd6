"""Masked fusion of per-modality tokens.

Every fusion module maps ``tokens [B, M, W]`` (one projected embedding per modality) and
``present [B, M]`` bool to ``[B, W]``, using only the present modalities. An album with
no modality at all gets a learned "nothing known" vector rather than NaNs.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from genre_tagger.models.encoders.base import masked_mean


def modality_tokens(embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor], order: list[str],
                    projection: Callable[[str], nn.Module], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fusion's input: ``(tokens [B, M, width] float32, mask [B, M] bool)``, one column per
    modality of ``order``; ``projection(m)`` maps ``embeddings[m] [B, D_m]`` to its token.
    A modality missing from ``embeddings`` or ``present`` gets a zero token, masked; absent
    tokens are zeroed, so nothing from them can leak, whatever the fusion does."""
    reference = next(iter(embeddings.values()))
    tokens, mask = [], []
    for name in order:
        if name in embeddings and name in present:
            tokens.append(projection(name)(embeddings[name].float()))
            mask.append(present[name].bool())
        else:
            tokens.append(reference.new_zeros(reference.shape[0], width, dtype=torch.float32))
            mask.append(torch.zeros(reference.shape[0], dtype=torch.bool, device=reference.device))
    tokens_t, mask_t = torch.stack(tokens, dim=1), torch.stack(mask, dim=1)
    return tokens_t * mask_t.unsqueeze(-1), mask_t


class MaskedMeanFusion(nn.Module):
    """Average of the present modality tokens. No parameters beyond the empty fallback."""

    def __init__(self, width: int, n_modalities: int = 3):
        super().__init__()
        self.empty = nn.Parameter(torch.zeros(width))

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        fused = masked_mean(tokens, present, dim=1)
        return torch.where(present.any(dim=1, keepdim=True), fused, self.empty.expand_as(fused))


class GatedFusion(nn.Module):
    """Softmax-gated sum: each present token scores its own weight, absent ones get none."""

    def __init__(self, width: int, n_modalities: int = 3):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(width, width // 2), nn.Tanh(), nn.Linear(width // 2, 1))
        self.empty = nn.Parameter(torch.zeros(width))

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        scores = self.score(tokens).squeeze(-1).masked_fill(~present, float("-inf"))  # [B, M]
        any_present = present.any(dim=1, keepdim=True)
        weights = torch.softmax(scores.masked_fill(~any_present, 0.0), dim=1) * present
        fused = (weights.unsqueeze(-1) * tokens).sum(dim=1)
        return torch.where(any_present, fused, self.empty.expand_as(fused))


class AttentionFusion(nn.Module):
    """A transformer layer over [CLS] + modality tokens; absent tokens are key-padded.

    The [CLS] token is never masked, so an album with no modality still yields a vector
    (the learned "nothing known" state). Learned modality-type embeddings tell tokens apart.
    """

    def __init__(self, width: int, n_modalities: int = 3, heads: int = 4, layers: int = 1, dropout: float = 0.1):
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.type_embedding = nn.Parameter(torch.randn(1, n_modalities, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        batch = tokens.shape[0]
        sequence = torch.cat([self.cls.expand(batch, -1, -1), tokens + self.type_embedding], dim=1)
        padding = torch.cat([present.new_zeros(batch, 1), ~present], dim=1)  # True = ignore
        return self.norm(self.encoder(sequence, src_key_padding_mask=padding)[:, 0])
