"""Linear probes beside the fused head: what a logistic regression gets from each view.

With a few hundred labelled albums and hundreds of labels, a deep head trained by SGD
leaves signal on the table that a well-regularised linear model per feature view picks
up (a descriptor view's band statistics, a tf-idf view's rare keywords). ``LinearProbes``
holds one such model per view (a slice of a modality's embedding: a ``MultiView`` has
several) and the weights that stack their logits with the fused head's. Everything here
is a buffer: the probes are *fitted* after stage 2 (training/probes.py: L2 strength and
stacking weights chosen on val), not trained by the optimizer, and they travel in the
checkpoint's state dict. Until fitted they add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genre_tagger.models.encoders.base import Encoder


@dataclass(frozen=True)
class ViewSlice:
    """Columns ``[start, end)`` of ``modality``'s embedding; ``sparse`` views (tf-idf) are
    scaled as a whole rather than column by column, so rare terms are not blown up."""

    modality: str
    name: str
    start: int
    end: int
    sparse: bool = False

    @property
    def dim(self) -> int:
        return self.end - self.start


def encoder_views(modality: str, encoder: Encoder) -> list[ViewSlice]:
    """The views of one modality's encoder: a ``MultiView``'s parts, else the whole embedding."""
    views = getattr(encoder, "views", None)
    if views is None:
        return [ViewSlice(modality, modality, 0, encoder.out_dim, getattr(encoder, "sparse_output", False))]
    slices, start = [], 0
    for name, view in views.items():
        slices.append(ViewSlice(modality, f"{modality}.{name}", start, start + view.out_dim,
                                getattr(view, "sparse_output", False)))
        start += view.out_dim
    return slices


class ViewProbe(nn.Module):
    """One view's logistic regression: ``(x [B, D] - mean) / scale @ weight [D, L] + bias [L]``."""

    def __init__(self, view: ViewSlice, n_labels: int):
        super().__init__()
        self.view = view
        self.register_buffer("mean", torch.zeros(view.dim))
        self.register_buffer("scale", torch.ones(view.dim))
        self.register_buffer("weight", torch.zeros(view.dim, n_labels))
        self.register_buffer("bias", torch.zeros(n_labels))

    def standardize(self, embedding: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """``[B, D_modality]``, ``[B]`` -> this view's standardised features ``[B, D]``, 0 where absent."""
        return self.standardize_columns(embedding[:, self.view.start:self.view.end], present)

    def standardize_columns(self, columns: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """This view's own columns ``[B, D]``, ``[B]`` -> standardised ``[B, D]``, 0 where absent."""
        return (columns.float() - self.mean) / self.scale * present.unsqueeze(-1)

    def forward(self, embedding: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return self.standardize(embedding, present) @ self.weight + self.bias


class LinearProbes(nn.Module):
    """Per-view probes and their stacking with the fused head's logits.

    ``forward(deep [B, L], embeddings {m: [B, D_m]}, present [B, M], order)`` ->
    ``stack[0] * deep + sum_v stack[v+1] * probe_v + offset`` once fitted, else ``deep``.
    An absent modality gives its probes zero features (only their bias speaks), as an
    absent modality gives a logistic regression on zero-filled features.
    """

    def __init__(self, views: list[ViewSlice], n_labels: int):
        super().__init__()
        self.probes = nn.ModuleList(ViewProbe(view, n_labels) for view in views)
        self.register_buffer("stack", torch.zeros(1 + len(views)))
        self.register_buffer("offset", torch.zeros(n_labels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def views(self) -> list[ViewSlice]:
        return [probe.view for probe in self.probes]

    def view_logits(self, embeddings: dict[str, torch.Tensor], present: torch.Tensor,
                    order: list[str], batch: int) -> list[torch.Tensor]:
        """Each probe's logits ``[B, L]`` (bias only where its modality is absent or not given)."""
        out = []
        for probe in self.probes:
            modality = probe.view.modality
            if modality in embeddings:
                out.append(probe(embeddings[modality], present[:, order.index(modality)]))
            else:
                out.append(probe.bias.expand(batch, -1))
        return out

    def forward(self, deep: torch.Tensor, embeddings: dict[str, torch.Tensor], present: torch.Tensor,
                order: list[str]) -> torch.Tensor:
        if not bool(self.fitted):
            return deep
        logits = self.stack[0] * deep + self.offset
        for weight, view_logits in zip(self.stack[1:], self.view_logits(embeddings, present, order, len(deep))):
            if float(weight) != 0.0:
                logits = logits + weight * view_logits
        return logits
