"""Late fusion for small catalogs: one linear classifier per modality beside the fused head.

With a few hundred labelled albums and hundreds of labels, a deep fused head cannot
learn every label from every modality; a linear model per modality on normalised features
(what a logistic regression does) can. ``LateFusion`` adds their logits, over the present
modalities, to the fused head's logits; modality dropout trains it on every subset.
"""

from __future__ import annotations

import torch
from torch import nn


class MaskedStandardize(nn.Module):
    """Per-feature standardisation from running statistics of the present rows only.

    ``x [B, D]``, ``present [B]`` -> ``[B, D]`` (absent rows 0). The variance is shrunk
    towards the modality's mean variance (``(x - mean) / sqrt(var + mean(var))``), so that a
    rare sparse feature is raised but not blown up. Statistics update in training mode.
    """

    def __init__(self, dim: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        if self.training and int(present.sum()) > 1:
            with torch.no_grad():
                rows = x[present].float()
                mean, var = rows.mean(dim=0), rows.var(dim=0)
                if not bool(self.initialised):
                    self.mean.copy_(mean), self.var.copy_(var), self.initialised.fill_(True)
                else:
                    self.mean.lerp_(mean, self.momentum), self.var.lerp_(var, self.momentum)
        scaled = (x.float() - self.mean) / torch.sqrt(self.var + self.var.mean() + 1e-8)
        return scaled * present.unsqueeze(-1)


class LateFusion(nn.Module):
    """``{m: [B, D_m]}`` embeddings and ``[B, M]`` presence -> summed per-modality logits ``[B, L]``."""

    def __init__(self, dims: dict[str, int], n_labels: int, dropout: float = 0.2):
        super().__init__()
        self.norms = nn.ModuleDict({m: MaskedStandardize(d) for m, d in dims.items()})
        self.heads = nn.ModuleDict({m: nn.Sequential(nn.Dropout(dropout), nn.Linear(d, n_labels))
                                    for m, d in dims.items()})

    def forward(self, embeddings: dict[str, torch.Tensor], present: torch.Tensor, order: list[str]) -> torch.Tensor:
        total = None
        for column, name in enumerate(order):
            if name not in embeddings:
                continue
            mask = present[:, column]
            if not bool(mask.any()):
                continue
            logits = self.heads[name](self.norms[name](embeddings[name], mask)) * mask.unsqueeze(-1)
            total = logits if total is None else total + logits
        return total
