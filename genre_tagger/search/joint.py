"""The joint album/text space: one linear map per input into a shared, L2-normalised space.

Album side: every album-side modality's embedding (a frozen encoder's, as the tagger bundle
gives it) is standardised per feature (``Standardize``, fitted on the training albums) and
mapped linearly. Text side: the joint space's own sparse text view (``text_view.py``), its
own input beside the modalities' embeddings, optionally LayerNorm'd, mapped linearly.

An album's vector fuses its present modalities (and its own texts' view, when given):
``sum`` adds their linear maps and a shared bias before normalising (one linear map of the
album's concatenated standardised inputs with absent ones at the catalog mean: the form the
closed-form CCA fit gives, ``load_canonical_maps``), ``mean`` averages their unit vectors
(for spaces trained by InfoNCE, ``info_nce``). An album with nothing present gets zeros and
``known = False``. A text query goes through the text map alone, so a text-only album lives
in the same space.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Standardize(nn.Module):
    """Per-feature standardisation ``[B, D] -> [B, D]``, mean and spread fitted on training rows
    (buffers, so saved with the space). Unlike LayerNorm it keeps how far one album's feature
    lies from the catalog's, e.g. how loud or distorted it is beside others of its genre."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("inv_std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, rows: torch.Tensor) -> None:
        """``rows [N, D]``: the training albums' inputs (present ones only)."""
        self.mean.copy_(rows.mean(dim=0))
        if len(rows) > 1:
            self.inv_std.copy_(1.0 / rows.std(dim=0).clamp(min=1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


class JointSpace(nn.Module):
    """Linear maps ``{m: [B, D_m] -> [B, dim]}`` for the album side, ``[B, text_dim] -> [B, dim]``
    for the text view, and a temperature.

    ``album_dims``: ``{m: D_m}`` of the album-side modalities (their order is the order of
    ``album_design``'s columns); ``text_dim``: the text view's width. ``dropout``: on every
    map's inputs while training by InfoNCE. ``temperature``: the initial value, learned when
    ``learn_temperature``. ``text_norm``: ``none`` (the view's unit tf-idf vectors as they
    are) or ``layer`` (LayerNorm first). ``fusion``: ``sum`` or ``mean`` (module docstring).
    The defaults are the shipped ``configs/search/joint.yaml``'s (``fit.JointSettings``).
    """

    def __init__(self, album_dims: dict[str, int], text_dim: int, dim: int = 128, dropout: float = 0.2,
                 temperature: float = 0.07, learn_temperature: bool = True, text_norm: str = "none",
                 fusion: str = "sum"):
        super().__init__()
        for name, value, allowed in (("text_norm", text_norm, ("none", "layer")), ("fusion", fusion, ("sum", "mean"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not album_dims:
            raise ValueError("a joint space needs at least one album-side modality")
        self.init_args = {"dim": dim, "dropout": dropout, "temperature": temperature,
                          "learn_temperature": learn_temperature, "text_norm": text_norm, "fusion": fusion}
        self.dim, self.text_dim, self.fusion = dim, text_dim, fusion
        self.album_dims = dict(album_dims)
        self.scaling = nn.ModuleDict({m: Standardize(d) for m, d in album_dims.items()})
        self.album_maps = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in album_dims.items()})
        self.text_scaling = nn.LayerNorm(text_dim) if text_norm == "layer" else nn.Identity()
        self.text_map = nn.Linear(text_dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.album_bias = nn.Parameter(torch.zeros(dim)) if fusion == "sum" else None
        scale = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.log_scale = nn.Parameter(scale)
        else:
            self.register_buffer("log_scale", scale)

    @property
    def album_modalities(self) -> list[str]:
        return list(self.album_dims)

    @property
    def design_width(self) -> int:
        """Columns of ``album_design``: every album-side input, then one presence flag each."""
        return sum(self.album_dims.values()) + len(self.album_dims)

    @property
    def scale(self) -> torch.Tensor:
        """1 / temperature, clamped at 100 (as CLIP) so that training cannot blow up."""
        return self.log_scale.exp().clamp(max=100.0)

    @torch.no_grad()
    def fit_input_scaling(self, embeddings: dict[str, torch.Tensor]) -> None:
        """Fit each album-side ``Standardize`` on ``{m: [N_m, D_m]}``, the present training albums' inputs."""
        for m, x in embeddings.items():
            if m in self.scaling and len(x):
                self.scaling[m].fit(x.float())

    def album_part(self, modality: str, embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, D_m] -> [B, dim]``: one album-side modality's linear map, before normalisation."""
        return self.album_maps[modality](self.dropout(self.scaling[modality](embeddings.float())))

    def text_part(self, view: torch.Tensor) -> torch.Tensor:
        """``[B, text_dim] -> [B, dim]``: the text view's linear map, before normalisation."""
        return self.text_map(self.dropout(self.text_scaling(view.float())))

    def project(self, modality: str, embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, D_m] -> [B, dim]``, unit length."""
        return F.normalize(self.album_part(modality, embeddings), dim=-1)

    def text(self, view: torch.Tensor) -> torch.Tensor:
        """Text-view vectors ``[B, text_dim]`` -> query vectors ``[B, dim]``, unit length."""
        return F.normalize(self.text_part(view), dim=-1)

    def album(self, embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
              text: torch.Tensor | None = None, text_present: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked fusion: ``({m: [B, D_m]}, {m: [B] bool}, text view [B, text_dim] | None, [B] bool)
        -> (vectors [B, dim], known [B] bool)``.

        Album-side modalities missing from ``embeddings`` count as absent, others are ignored;
        a row with nothing present is all zeros (it matches nothing) and ``known`` is False there.
        """
        used = [m for m in self.album_modalities if m in embeddings]
        parts = [(self.album_part(m, embeddings[m]), present[m]) for m in used]
        if text is not None:
            parts.append((self.text_part(text), text_present))
        if not parts:
            raise ValueError("album(): none of the space's inputs were given")
        total = torch.zeros_like(parts[0][0])
        count = torch.zeros(total.shape[0], 1, device=total.device)
        for vector, mask in parts:
            mask = mask.bool().unsqueeze(-1).to(total.device)
            total = total + (vector if self.fusion == "sum" else F.normalize(vector, dim=-1)) * mask
            count = count + mask
        known = count.squeeze(-1) > 0
        if self.fusion == "sum":  # the album side's centring, where it has an album-side modality
            album_side = torch.zeros_like(known)
            for m in used:
                album_side = album_side | present[m].bool().to(known.device)
            total = total + self.album_bias * album_side.unsqueeze(-1)
        return F.normalize(total / count.clamp(min=1.0), dim=-1) * known.unsqueeze(-1), known

    @torch.no_grad()
    def album_design(self, embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, design_width]``: each album-side modality's standardised input (zeros where
        absent: the training mean), then one presence flag per modality; what one linear map
        of the album side reads under ``fusion: sum`` (``load_canonical_maps``)."""
        columns, flags = [], []
        for m in self.album_modalities:
            mask = present[m].bool().unsqueeze(-1)
            columns.append(self.scaling[m](embeddings[m].float()) * mask)
            flags.append(mask.float())
        return torch.cat(columns + flags, dim=1)

    @torch.no_grad()
    def load_canonical_maps(self, maps) -> None:
        """Set the linear maps (``fusion: sum``) to a fitted ``cca.CanonicalMaps`` whose album
        side read ``album_design`` and whose text side read the view."""
        if self.fusion != "sum":
            raise ValueError("canonical maps need fusion 'sum'")
        weight = lambda block: torch.as_tensor(block * maps.correlations, dtype=torch.float32)  # noqa: E731
        start, flags = 0, sum(self.album_dims.values())
        for j, m in enumerate(self.album_modalities):
            width = self.album_dims[m]
            self.album_maps[m].weight.copy_(weight(maps.album_map[start:start + width]).T)
            self.album_maps[m].bias.copy_(weight(maps.album_map[flags + j]))
            start += width
        self.album_bias.copy_(weight(-maps.album_mean @ maps.album_map))
        self.text_map.weight.copy_(weight(maps.text_map).T)
        self.text_map.bias.copy_(weight(-maps.text_mean @ maps.text_map))


def info_nce(first: torch.Tensor, second: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE (NT-Xent across modalities) over a batch of matched pairs.

    ``first [B, d]``, ``second [B, d]``: unit vectors, row i of each is a positive pair and
    every other row of the batch a negative. Returns the mean of the first->second and
    second->first cross-entropies (a scalar).
    """
    logits = scale * first @ second.T
    target = torch.arange(first.shape[0], device=first.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
