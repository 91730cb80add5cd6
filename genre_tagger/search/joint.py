"""The joint album/text space: one two-layer projection per modality into a shared,
L2-normalised space (as CrossMuSim), masked fusion of an album's present modalities, and
the symmetric InfoNCE loss with a temperature.

Album side: the projections of the album's present modalities (audio, cover, and its own
texts when it has them) are normalised, averaged over the present ones and normalised
again. An album with nothing known gets a zero vector and ``known = False``. Text queries
go through the same text projection, so a text-only album lives in the same space.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MODALITIES = ("audio", "image", "text")


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


def projection(in_dim: int, hidden: int, dim: int, dropout: float, norm: str = "layer") -> nn.Sequential:
    """Two-layer MLP ``[B, in_dim] -> [B, dim]``, inputs first normalised (encoders differ in
    scale): ``norm`` "layer" (LayerNorm), "standardize" (per feature, fitted later) or "none";
    ``hidden`` 0: one linear map with ``dropout`` on its inputs."""
    norm = {"layer": nn.LayerNorm, "standardize": Standardize, "none": lambda _: nn.Identity()}[norm](in_dim)
    if hidden <= 0:
        return nn.Sequential(norm, nn.Dropout(dropout), nn.Linear(in_dim, dim))
    return nn.Sequential(norm, nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class JointSpace(nn.Module):
    """Projections ``{m: [B, D_m] -> [B, dim]}`` and a temperature.

    ``input_dims`` names the modalities the space knows (a subset of audio/image/text);
    ``temperature`` is the initial value, learned when ``learn_temperature``. With
    ``text_view_dim`` > 0 a text vector is ``[B, input_dims["text"] + text_view_dim]``: the
    text encoder's embedding (through its stem) followed by a sparse view's (``text_view.py``),
    and the text projection reads both. ``input_norm``: how each projection normalises its
    inputs, ``layer`` (LayerNorm) or ``standardize`` (audio and cover per feature, fitted by
    ``fit_input_scaling`` on the training albums; text keeps LayerNorm). ``text_inputs``:
    what the text projection reads, ``both`` (encoder embedding and view) or ``view`` (the
    sparse view alone; needs ``text_view_dim`` > 0). ``text_norm``: the text projection's input
    normalisation, ``layer`` or ``none`` (the view's unit tf-idf vectors as they are).
    ``fusion``: how an album's present modalities combine, ``mean`` (of their unit vectors) or
    ``sum`` (of their linear maps plus a shared bias, then normalised: one linear map of the
    album's concatenated standardised inputs with absent ones at the catalog mean, the form a
    closed-form fit such as ``cca.py`` gives; ``load_canonical_maps``).
    """

    def __init__(self, input_dims: dict[str, int], dim: int = 128, hidden: int = 512, dropout: float = 0.1,
                 temperature: float = 0.07, learn_temperature: bool = True, stem_width: int | None = None,
                 text_view_dim: int = 0, input_norm: str = "layer", text_inputs: str = "both",
                 text_norm: str = "layer", fusion: str = "mean"):
        super().__init__()  # the defaults of the last four: what checkpoints made before they existed mean
        for name, value, allowed in (("input_norm", input_norm, ("layer", "standardize")),
                                     ("text_inputs", text_inputs, ("both", "view")),
                                     ("text_norm", text_norm, ("layer", "none")), ("fusion", fusion, ("mean", "sum"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        self.input_norm, self.fusion = input_norm, fusion
        unknown = set(input_dims) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}")
        self.input_dims = dict(input_dims)
        self.dim = dim
        self.stem_width = stem_width
        self.text_view_dim = text_view_dim if "text" in input_dims else 0
        self.text_inputs = text_inputs if self.text_view_dim else "both"
        # Frozen stems: copies of the tagger's genre-trained modality projections (LayerNorm,
        # Linear, GELU), which the joint space builds on (measured: benchmarks/RESULTS.md).
        self.stems = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(d), nn.Linear(d, stem_width), nn.GELU())
                                    for m, d in input_dims.items()}) if stem_width else None
        if self.stems is not None:
            self.stems.requires_grad_(False)
        widths = {m: (stem_width or d) + (self.text_view_dim if m == "text" else 0) for m, d in input_dims.items()}
        if self.text_inputs == "view":
            widths["text"] = self.text_view_dim
        norms = {m: text_norm if m == "text" else input_norm for m in widths}
        self.projections = nn.ModuleDict({m: projection(w, hidden, dim, dropout, norms[m]) for m, w in widths.items()})
        self.album_bias = nn.Parameter(torch.zeros(dim)) if fusion == "sum" else None
        scale = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.log_scale = nn.Parameter(scale)
        else:
            self.register_buffer("log_scale", scale)

    @property
    def modalities(self) -> list[str]:
        return [m for m in MODALITIES if m in self.projections]

    @property
    def scale(self) -> torch.Tensor:
        """1 / temperature, clamped at 100 (as CLIP) so that training cannot blow up."""
        return self.log_scale.exp().clamp(max=100.0)

    def load_stems(self, modules: dict[str, nn.Module]) -> None:
        """Copy the weights of ``{m: Sequential(LayerNorm, Linear, GELU)}`` (a tagger's projections)."""
        for m, stem in self.stems.items():
            stem.load_state_dict(modules[m].state_dict())

    @torch.no_grad()
    def fit_input_scaling(self, embeddings: dict[str, torch.Tensor]) -> None:
        """Fit each ``Standardize`` on ``{m: [N_m, D_m]}``, the present training albums' inputs."""
        for m, x in embeddings.items():
            first = self.projections[m][0] if m in self.projections else None
            if isinstance(first, Standardize) and len(x):
                first.fit(self.stems[m](x.float()) if self.stems is not None else x.float())

    def project(self, modality: str, embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, D_m] -> [B, dim]``, unit length (text: ``D_text + text_view_dim`` columns)."""
        return F.normalize(self.raw_projection(modality, embeddings), dim=-1)

    def raw_projection(self, modality: str, embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, D_m] -> [B, dim]`` before normalisation."""
        x = embeddings.float()
        view = None
        if modality == "text" and self.text_view_dim:
            x, view = x[:, :-self.text_view_dim], x[:, -self.text_view_dim:]
        if view is not None and self.text_inputs == "view":
            return self.projections[modality](view)
        if self.stems is not None:
            x = self.stems[modality](x)
        if view is not None:
            x = torch.cat([x, view], dim=-1)
        return self.projections[modality](x)

    @property
    def album_modalities(self) -> list[str]:
        return [m for m in self.modalities if m != "text"]

    @torch.no_grad()
    def album_design(self, embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, sum D_m + M]``: each album modality's normalised input (zeros where absent: the
        training mean once standardised), then one presence flag per modality; what a linear
        map of the album side reads under ``fusion: sum`` (``load_canonical_maps``)."""
        columns, flags = [], []
        for m in self.album_modalities:
            mask = present[m].bool().unsqueeze(-1)
            columns.append(self.projections[m][0](embeddings[m].float()) * mask)
            flags.append(mask.float())
        return torch.cat(columns + flags, dim=1)

    @torch.no_grad()
    def load_canonical_maps(self, maps) -> None:
        """Set the linear maps (``hidden: 0``, ``fusion: sum``, ``text_inputs: view``) to a fitted
        ``cca.CanonicalMaps`` whose album side read ``album_design`` and text side the view."""
        if self.fusion != "sum" or not all(len(self.projections[m]) == 3 for m in self.modalities):
            raise ValueError("canonical maps need linear projections (hidden 0) and fusion 'sum'")
        weight = lambda block: torch.as_tensor(block * maps.correlations, dtype=torch.float32)  # noqa: E731
        start, flags = 0, sum(self.projections[m][2].in_features for m in self.album_modalities)
        for j, m in enumerate(self.album_modalities):
            linear, width = self.projections[m][2], self.projections[m][2].in_features
            linear.weight.copy_(weight(maps.album_map[start:start + width]).T)
            linear.bias.copy_(weight(maps.album_map[flags + j]))
            start += width
        self.album_bias.copy_(weight(-maps.album_mean @ maps.album_map))
        if "text" in self.projections:
            self.projections["text"][2].weight.copy_(weight(maps.text_map).T)
            self.projections["text"][2].bias.copy_(weight(-maps.text_mean @ maps.text_map))

    def text(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Text-encoder embeddings ``[B, D_text]`` -> query vectors ``[B, dim]``."""
        return self.project("text", embeddings)

    def album(self, embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor]
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked fusion: ``({m: [B, D_m]}, {m: [B] bool}) -> (vectors [B, dim], known [B] bool)``.

        Modalities missing from ``embeddings`` or unknown to the space count as absent; a row
        with nothing present is all zeros (it matches nothing) and ``known`` is False there.
        """
        used = [m for m in self.modalities if m in embeddings]
        if not used:
            raise ValueError("album(): none of the space's modalities were given")
        batch = next(iter(embeddings.values())).shape[0]
        total = torch.zeros(batch, self.dim, device=self.log_scale.device)
        count = torch.zeros(batch, 1, device=self.log_scale.device)
        for m in used:
            mask = present[m].bool().unsqueeze(-1).to(total.device)
            part = self.raw_projection(m, embeddings[m]) if self.fusion == "sum" else self.project(m, embeddings[m])
            total = total + part * mask
            count = count + mask
        known = count.squeeze(-1) > 0
        if self.fusion == "sum":  # the album side's centring, where it has an album-side modality
            album_side = torch.zeros_like(known)
            for m in used:
                if m != "text":
                    album_side = album_side | present[m].bool().to(known.device)
            total = total + self.album_bias * album_side.unsqueeze(-1)
        return F.normalize(total / count.clamp(min=1.0), dim=-1) * known.unsqueeze(-1), known


def info_nce(first: torch.Tensor, second: torch.Tensor, scale: torch.Tensor | float,
             related: torch.Tensor | None = None, soft: float = 0.0) -> torch.Tensor:
    """Symmetric InfoNCE (NT-Xent across modalities) over a batch of matched pairs.

    ``first [B, d]``, ``second [B, d]``: unit vectors, row i of each is a positive pair and
    every other row of the batch a negative. With ``related [B, B]`` (e.g. shared genres,
    symmetric, >= 0) and ``soft > 0`` the target of row i puts ``1 - soft`` on its own pair
    and ``soft`` spread over its related rows (itself included), so that albums sharing
    genres are not pushed apart as hard as unrelated ones. Returns the mean of the
    first->second and second->first cross-entropies (a scalar).
    """
    logits = scale * first @ second.T
    if related is None or soft <= 0:
        target = torch.arange(first.shape[0], device=first.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    eye = torch.eye(first.shape[0], device=first.device)
    spread = (related + eye).clamp(min=0)
    spread = spread / spread.sum(dim=1, keepdim=True)
    target = (1 - soft) * eye + soft * spread
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target.T / target.T.sum(1, keepdim=True)))


def genre_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Supervised genre term: ``logits [B, L]`` against multi-hot ``targets [B, L]`` as a
    softmax over labels with the album's genres sharing the mass evenly (scale-free, of the
    same order as InfoNCE). Rows without genres are left out; 0 when there are none."""
    counts = targets.sum(dim=1)
    rows = counts > 0
    if not rows.any():
        return logits.sum() * 0.0
    spread = targets[rows] / counts[rows].unsqueeze(1)
    return -(spread * F.log_softmax(logits[rows], dim=1)).sum(dim=1).mean()
