"""The genre tagger: encoders -> projections -> masked fusion -> logits. No sigmoid inside."""

from __future__ import annotations

import torch
from torch import nn

from genre_tagger.config import instantiate
from genre_tagger.models.encoders.base import Encoder, build_encoder
from genre_tagger.models.fusion import MaskedMeanFusion, modality_tokens
from genre_tagger.models.modality_dropout import drop_modalities
from genre_tagger.models.probes import LinearProbes, encoder_views, pattern_bits, presence_patterns
from genre_tagger.models.subset_heads import SubsetHead, subset_key

Batch = dict[str, dict[str, torch.Tensor]]


class GenreTagger(nn.Module):
    """Multimodal multi-label tagger.

    ``forward(batch) -> logits [B, L]`` where ``batch[m]`` is modality m's collated input
    (with ``"present": [B]``). ``logits_from_embeddings`` skips the encoders: it takes
    ``{m: [B, D_m]}`` embeddings plus ``{m: [B]}`` presence, which is how the fusion head
    trains on cached embeddings. Its defaults are the shipped ``configs/default.yaml``'s.
    """

    def __init__(
        self,
        encoders: dict[str, Encoder],
        n_labels: int,
        fusion: nn.Module | None = None,
        width: int = 256,
        head_hidden: int = 512,
        dropout: float = 0.5,
        modality_dropout: float = 0.25,
        probes: bool = True,
    ):
        super().__init__()
        self.modalities = list(encoders)
        # the genre taxonomy (genre_tagger.taxonomy.Taxonomy) the prediction path applies to
        # the scores, or None; set by training and by checkpoint loading, not a weight
        self.taxonomy = None
        self.encoders = nn.ModuleDict(encoders)
        self.projections = nn.ModuleDict({
            name: nn.Sequential(nn.LayerNorm(encoder.out_dim), nn.Linear(encoder.out_dim, width), nn.GELU())
            for name, encoder in encoders.items()
        })
        # ``fusion`` maps ``tokens [B, M, width]`` + ``present [B, M]`` to ``[B, width]``;
        # default: the masked mean (no parameters).
        self.fusion = fusion if fusion is not None else MaskedMeanFusion(width, len(self.modalities))
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(width, head_hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(head_hidden, n_labels),
        )
        self.modality_dropout = modality_dropout
        self.width, self.head_hidden, self.dropout, self.n_labels = width, head_hidden, dropout, n_labels
        # Per-view logistic regressions stacked with the head, fitted after stage 2
        # (models/probes.py, training/probes.py); inert until then.
        views = [v for name, encoder in encoders.items() for v in encoder_views(name, encoder)]
        self.probes = LinearProbes(views, n_labels) if probes else None
        # Deep heads for albums with exactly some of the modalities, by subset name
        # (models/subset_heads.py, training/subset_heads.py); none until fitted.
        self.subset_heads = nn.ModuleDict()

    def add_subset_head(self, modalities: list[str] | tuple[str, ...], head: SubsetHead | None = None,
                        own_projections: bool = True) -> SubsetHead:
        """Score albums with exactly ``modalities`` by ``head`` (default: a copy of the fused
        head's parts, with or without projections of its own, as checkpoint loading needs
        before the weights are read)."""
        ordered = [m for m in self.modalities if m in modalities]
        if not ordered or len(ordered) != len(set(modalities)) or len(ordered) == len(self.modalities):
            raise ValueError(f"a subset head needs a proper, non-empty subset of {self.modalities}, got {modalities}")
        head = head if head is not None else SubsetHead.copied_from(self, ordered, own_projections=own_projections)
        self.subset_heads[subset_key(ordered)] = head
        return head

    @property
    def input_widths(self) -> dict[str, int]:
        """``{m: D_m}``: the embedding width each modality's encoder gives."""
        return {name: encoder.out_dim for name, encoder in self.encoders.items()}

    def embed(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Run each encoder: ``({m: [B, D_m]}, {m: [B] bool})``."""
        embeddings = {name: self.encoders[name].encode(batch[name]) for name in self.modalities}
        present = {name: batch[name]["present"] for name in self.modalities}
        return embeddings, present

    def logits_from_embeddings(
        self, embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """``{m: [B, D_m]}``, ``{m: [B]}`` -> logits ``[B, L]``. Missing keys count as absent."""
        tokens_t, present_t = modality_tokens(embeddings, present, self.modalities, self.projections.__getitem__,
                                              self.width)
        if self.training:
            present_t = drop_modalities(present_t, self.modality_dropout)
            tokens_t = tokens_t * present_t.unsqueeze(-1)  # dropped tokens zeroed too
        logits = self.head(self.fusion(tokens_t, present_t))
        if len(self.subset_heads) and not self.training:
            logits = self.subset_logits(logits, embeddings, present_t)
        if self.probes is not None:
            logits = self.probes(logits, {n: e.float() for n, e in embeddings.items()}, present_t, self.modalities)
        return logits

    def subset_logits(self, fused: torch.Tensor, embeddings: dict[str, torch.Tensor],
                      present: torch.Tensor) -> torch.Tensor:
        """``fused [B, L]`` with the rows whose presence pattern (``present [B, M]``) has a
        subset head blended with that head's logits (its ``blend`` share); other rows are
        returned as they were."""
        patterns = presence_patterns(present)
        out = fused
        for head in self.subset_heads.values():
            rows = patterns == pattern_bits(head.modalities, self.modalities)
            if bool(rows.any()):
                out = out.clone() if out is fused else out
                own = head({m: e[rows] for m, e in embeddings.items()}, present[rows], self.modalities,
                           self.projections).to(out.dtype)
                out[rows] = (1 - head.blend) * fused[rows] + head.blend * own
        return out

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.logits_from_embeddings(*self.embed(batch))


def build_tagger(model_config: dict, modalities: list[str], n_labels: int,
                 encoders: dict[str, Encoder] | None = None) -> GenreTagger:
    """The edge where a ``model`` config section becomes a tagger for ``modalities``.

    ``encoders``: already built encoders to reuse (others are built from the config).
    The fusion spec gets ``width`` and ``n_modalities`` from the tagger settings.
    """
    encoders = dict(encoders or {})
    for name in modalities:
        if name not in encoders:
            encoders[name] = build_encoder(model_config["encoders"][name])
    settings = dict(model_config.get("tagger", {}))
    fusion = instantiate(model_config["fusion"], width=settings.get("width", 256), n_modalities=len(modalities))
    return GenreTagger({m: encoders[m] for m in modalities}, n_labels, fusion=fusion, **settings)
