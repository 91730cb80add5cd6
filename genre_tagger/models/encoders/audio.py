"""Audio encoder: a small CNN over log-mel crops, pooled over crops and tracks."""

from __future__ import annotations

import torch
from torch import nn

from genre_tagger.models.encoders.base import Encoder, masked_mean


def conv_block(in_channels: int, out_channels: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
    )


class MelCNN(Encoder):
    """CNN over log-mel crops; trains from scratch (no pretrained music model installs here).

    Input: ``{"mels": [B, K, n_mels, F], "crop_mask": [B, K] bool, "present": [B]}`` where
    the K crops come from all of an album's tracks. Each crop -> conv stack -> mean over
    frequency, mean and max over time -> ``[2C]`` -> linear ``[out_dim]``; crops are then
    averaged (masked) into one album vector ``[B, out_dim]``.
    """

    modality = "audio"

    def __init__(
        self,
        n_mels: int = 64,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        out_dim: int = 256,
        dropout: float = 0.1,
        frozen: bool = False,
    ):
        super().__init__(frozen=frozen)
        self.out_dim = out_dim
        self.input_norm = nn.BatchNorm2d(1)
        blocks, in_channels = [], 1
        for width in channels:
            blocks.append(conv_block(in_channels, width, (2, 2)))
            in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.project = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * in_channels, out_dim), nn.ReLU())
        if frozen:
            self.freeze()

    def embed_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """``[N, n_mels, F]`` crops -> ``[N, out_dim]``."""
        features = self.blocks(self.input_norm(crops.unsqueeze(1)))  # [N, C, M', F']
        over_frequency = features.mean(dim=2)  # [N, C, F']
        pooled = torch.cat([over_frequency.mean(dim=2), over_frequency.amax(dim=2)], dim=1)
        return self.project(pooled)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mels, crop_mask = inputs["mels"], inputs["crop_mask"]
        batch, n_crops = crop_mask.shape
        crop_embeddings = mels.new_zeros(batch, n_crops, self.out_dim)
        if crop_mask.any():
            # Encode only real crops: padding would waste compute and skew batch norm.
            crop_embeddings[crop_mask] = self.embed_crops(mels[crop_mask]).to(mels.dtype)
        return masked_mean(crop_embeddings, crop_mask, dim=1)
