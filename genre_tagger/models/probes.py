"""Linear probes beside the fused head: what a logistic regression gets from each view.

With a few hundred labelled albums and hundreds of labels, a deep head trained by SGD
leaves signal on the table that a well-regularised linear model per feature view picks
up (a descriptor view's band statistics, a tf-idf view's rare keywords). ``LinearProbes``
holds one such model per view (a slice of a modality's embedding: a ``MultiView`` has
several) and the weights that stack their logits with the fused head's. Everything here
is a buffer: the probes are *fitted* after stage 2 (training/probes.py: L2 strength and
stacking weights chosen on val), not trained by the optimizer, and they travel in the
checkpoint's state dict. Until fitted they add nothing.

The stacking may also be fitted per presence pattern (which of the tagger's modalities an
album has): an album without text is then scored with weights and offsets chosen for the
modalities it has, as a model trained on that subset would weigh them, instead of the
weights chosen for albums that have everything. The probes themselves do not depend on the
pattern (a view's logistic regression reads only its own view).

Last, each pattern's logits may be rescaled onto complete albums' scale (fitted by
training/presence_calibration.py): ``m_p + k_p (z - m_p) + b_p``, so that a genre's albums
rank together whatever each has. That is for ranking albums within a genre; an album's
genre profile (search compares profiles by cosine) reads the logits before it
(``without_presence_scale``), since a shrink around each genre's mean tilts the profile
towards the common genres.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from genre_tagger.models.encoders.base import Encoder


def pattern_bits(modalities: list[str] | tuple[str, ...], order: list[str]) -> int:
    """The presence pattern of albums with exactly ``modalities`` (bit i: ``order[i]`` present)."""
    return sum(1 << i for i, m in enumerate(order) if m in modalities)


def presence_patterns(present: torch.Tensor) -> torch.Tensor:
    """``present [B, M]`` bool -> each album's pattern ``[B]`` (long; bit i: column i present)."""
    bits = 1 << torch.arange(present.shape[1], device=present.device)
    return (present.long() * bits).sum(dim=1)


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

    Per presence pattern ``p`` (bit i set: ``modalities[i]`` present), when
    ``subset_fitted[p]``: ``subset_stack[p] [1 + V]`` and ``subset_offset[p] [L]`` replace
    ``stack`` and ``offset`` for the albums with that pattern. Then ``presence_scale [P]``,
    ``presence_shift [P]`` and ``presence_mean [P, L]`` map each album's logits ``z`` to
    ``mean + scale (z - mean) + shift`` of its pattern (1, 0: unchanged), except within
    ``without_presence_scale``.
    """

    def __init__(self, views: list[ViewSlice], n_labels: int):
        super().__init__()
        self.probes = nn.ModuleList(ViewProbe(view, n_labels) for view in views)
        # the modalities in the tagger's order (its encoders' order is its views' order)
        self.modalities = list(dict.fromkeys(view.modality for view in views))
        patterns = 2 ** len(self.modalities)
        self.register_buffer("stack", torch.zeros(1 + len(views)))
        self.register_buffer("offset", torch.zeros(n_labels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("subset_stack", torch.zeros(patterns, 1 + len(views)))
        self.register_buffer("subset_offset", torch.zeros(patterns, n_labels))
        self.register_buffer("subset_fitted", torch.zeros(patterns, dtype=torch.bool))
        self.register_buffer("presence_scale", torch.ones(patterns))
        self.register_buffer("presence_shift", torch.zeros(patterns))
        self.register_buffer("presence_mean", torch.zeros(patterns, n_labels))

    @property
    def views(self) -> list[ViewSlice]:
        return [probe.view for probe in self.probes]

    def pattern(self, modalities: list[str] | tuple[str, ...]) -> int:
        """The presence pattern of albums that have exactly ``modalities``."""
        return pattern_bits(modalities, self.modalities)

    def patterns_of(self, present: torch.Tensor, order: list[str]) -> torch.Tensor:
        """``present [B, M]`` (columns in ``order``) -> each album's pattern ``[B]`` (long)."""
        absent = present.new_zeros(present.shape[0])
        columns = [present[:, order.index(m)] if m in order else absent for m in self.modalities]
        return presence_patterns(torch.stack(columns, dim=1))

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
        return self.rescaled(self.stacked(deep, embeddings, present, order), present, order)

    def stacked(self, deep: torch.Tensor, embeddings: dict[str, torch.Tensor], present: torch.Tensor,
                order: list[str]) -> torch.Tensor:
        """The fitted stack's logits ``[B, L]``: each album's pattern's stack, else the global one."""
        views = self.view_logits(embeddings, present, order, len(deep))
        if not bool(self.subset_fitted.any()):
            logits = self.stack[0] * deep + self.offset
            for weight, view_logits in zip(self.stack[1:], views):
                if float(weight) != 0.0:
                    logits = logits + weight * view_logits
            return logits
        patterns = self.patterns_of(present, order)
        own = self.subset_fitted[patterns].unsqueeze(-1)  # [B, 1]
        weights = torch.where(own, self.subset_stack[patterns], self.stack.unsqueeze(0))  # [B, 1 + V]
        logits = torch.where(own, self.subset_offset[patterns], self.offset.unsqueeze(0)) + weights[:, :1] * deep
        for k, view_logits in enumerate(views, start=1):
            logits = logits + weights[:, k:k + 1] * view_logits
        return logits

    def clear_presence_scale(self) -> None:
        """Every pattern's map back to the identity."""
        self.presence_scale.fill_(1.0), self.presence_shift.zero_(), self.presence_mean.zero_()

    def rescaled(self, logits: torch.Tensor, present: torch.Tensor, order: list[str]) -> torch.Tensor:
        """``logits [B, L]`` on complete albums' scale (each album's pattern's map), when fitted and on."""
        identity = not bool(((self.presence_scale != 1) | (self.presence_shift != 0)).any())
        if identity or getattr(_PROFILE_READS, "active", False):
            return logits
        patterns = self.patterns_of(present, order)
        mean, scale = self.presence_mean[patterns], self.presence_scale[patterns].unsqueeze(-1)
        return mean + scale * (logits - mean) + self.presence_shift[patterns].unsqueeze(-1)


_PROFILE_READS = threading.local()  # per thread: a server may tag and search at once


@contextmanager
def without_presence_scale() -> Iterator[None]:
    """Within the block, on this thread, every tagger's probes skip their presence scale."""
    before = getattr(_PROFILE_READS, "active", False)
    _PROFILE_READS.active = True
    try:
        yield
    finally:
        _PROFILE_READS.active = before
