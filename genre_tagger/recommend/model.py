"""The next-album model as plain nn.Modules.

``AlbumEncoder``: every album of the catalog -> one vector. Its content inputs (the
tagger's genre scores and/or its frozen modality embeddings, ``recommend/catalog.py``)
are projected to a shared width and pooled by attention over one token each, absent
inputs masked out (a learned "no content" token is always there, so an album with nothing
still gets a vector); a learned id embedding and bias are added for albums seen in
training. Cold albums (no id) are scored from content alone; during training ids are
dropped at random (``id_dropout``) so that the content path alone must rank well too,
and so are inputs (``modality_dropout``, one always kept).

``HistoryEncoder``: SASRec-style causal self-attention over the played albums' vectors
plus learned position embeddings counted from the most recent play, and beside it the
listener's taste: a recency-weighted mean of the played albums' vectors (learned decay).

The id embeddings can start from the training events' co-occurrence
(``recommend/cooccurrence.py``, ``model.id_start`` in the config) rather than from noise.

``GenreTaste``: when the albums' content includes the tagger's genre scores (``GENRES``),
the listener's taste in that label space, read directly rather than through the narrow
album vectors: a recency-weighted profile of the played albums' genre scores, matched
against every album's by a per-label weighted cosine. Listeners pick within sub-genres
(a few hundred of them in a MuMu-sized vocabulary); a 64-wide vector learned from plays
cannot keep them all apart, and cold albums have nothing else.

``NextAlbumModel``: them together; the next album is scored against every album of the
catalog by a dot product with the same album vectors (+ the id bias, + the genre taste):
a full softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from genre_tagger.models.modality_dropout import drop_modalities

PAD = -1  # padding in item-index sequences
GENRES = "genres"  # the content key of the tagger's genre scores (recommend/catalog.py)


@dataclass
class AlbumTable:
    """The catalog as the model sees it (N albums, in manifest order).

    ``content[m] [N, D_m]`` float and ``present[m] [N]`` bool per modality;
    ``id_index [N]`` long: the album's row in the id embedding (1..n_ids), 0 for albums
    without one (cold, or unseen when the model was trained).
    """

    ids: list[str]
    content: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]
    id_index: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str) -> "AlbumTable":
        return AlbumTable(self.ids, {m: v.to(device) for m, v in self.content.items()},
                          {m: v.to(device) for m, v in self.present.items()}, self.id_index.to(device))


class AlbumVectors(NamedTuple):
    """What every album contributes to the scores: ``vectors [N, width]``, ``bias [N]`` and,
    when the content has genre scores, their unit rows ``genres [N, L]`` (zero when absent)."""

    vectors: torch.Tensor
    bias: torch.Tensor
    genres: torch.Tensor | None = None


class AlbumEncoder(nn.Module):
    """``AlbumTable`` -> ``AlbumVectors``."""

    def __init__(self, input_dims: dict[str, int], n_ids: int, width: int = 128, heads: int = 2,
                 id_dropout: float = 0.3, modality_dropout: float = 0.1, use_ids: bool = True, id_init: float = 1.0,
                 id_shrink: float = 0.0):
        super().__init__()
        self.modalities = list(input_dims)
        self.projections = nn.ModuleDict({
            m: nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, width), nn.GELU(), nn.Linear(width, width))
            for m, dim in input_dims.items()
        })
        self.type_embedding = nn.Parameter(torch.randn(max(1, len(self.modalities)), width) * 0.02)
        self.no_content = nn.Parameter(torch.randn(width) * 0.02)
        self.query = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.use_ids = use_ids
        self.ids = nn.Embedding(n_ids + 1, width, padding_idx=0)
        self.bias = nn.Embedding(n_ids + 1, 1, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=id_init)  # against the layer-normed content part (~1 per dim)
        nn.init.zeros_(self.bias.weight)
        with torch.no_grad():
            self.ids.weight[0].zero_()
        self.norm = nn.LayerNorm(width)
        self.id_dropout, self.modality_dropout = id_dropout, modality_dropout
        # Added (outside training) to the score of albums without an id: set on validation
        # events after training (``calibrate_cold_offset``), since no training target is cold.
        self.register_buffer("cold_offset", torch.zeros(()))
        # How much of its id an album uses, ``n / (n + id_shrink)`` for ``n`` training plays
        # (``set_play_counts``): a rarely played album's id is mostly noise, so its vector
        # leans on content; a popular one's id carries what content cannot tell. 1 = off.
        self.id_shrink = id_shrink
        self.register_buffer("id_weight", torch.ones(n_ids + 1))

    def set_play_counts(self, counts: torch.Tensor) -> None:
        """``counts [n_ids]``: training plays of the albums with an id, in id order."""
        if self.id_shrink > 0:
            counts = counts.float().to(self.id_weight.device)
            self.id_weight[1:] = counts / (counts + self.id_shrink)

    def content_vectors(self, table: AlbumTable) -> torch.Tensor:
        """Attention pooling over [no-content token, modality tokens]: ``[N, width]``. In
        training each album's present inputs are dropped at random (``modality_dropout``,
        ``drop_modalities``: at least one is kept for an album that has one)."""
        n = len(table)
        tokens = [self.no_content.expand(n, 1, -1)]
        present = torch.zeros(n, len(self.modalities), dtype=torch.bool, device=self.no_content.device)
        for k, m in enumerate(self.modalities):
            present[:, k] = table.present[m].bool()
            tokens.append((self.projections[m](table.content[m].float()) + self.type_embedding[k]).unsqueeze(1))
        if self.training:
            present = drop_modalities(present, self.modality_dropout)
        no_content = torch.zeros(n, 1, dtype=torch.bool, device=present.device)
        keys = torch.cat(tokens, dim=1)
        padding = torch.cat([no_content, ~present], dim=1)
        pooled, _ = self.attention(self.query.expand(n, -1, -1), keys, keys, key_padding_mask=padding)
        return pooled[:, 0]

    def forward(self, table: AlbumTable) -> AlbumVectors:
        vectors, bias = self.encode(table)
        return AlbumVectors(vectors, bias, self.genre_channel(table))

    def genre_channel(self, table: AlbumTable) -> torch.Tensor | None:
        """Unit genre-score rows ``[N, L]`` (zero for albums without any content), or None
        when the content has no genre scores."""
        if GENRES not in self.modalities:
            return None
        scores = F.normalize(table.content[GENRES].float(), dim=-1)
        return scores * table.present[GENRES].unsqueeze(-1).to(scores.dtype)

    def encode(self, table: AlbumTable) -> tuple[torch.Tensor, torch.Tensor]:
        """``(vectors [N, width], bias [N])``: the content part plus, for albums with an id,
        the id embedding (ids dropped at random in training, ``id_dropout``)."""
        id_index = table.id_index if self.use_ids else torch.zeros_like(table.id_index)
        if self.training and self.id_dropout > 0:
            id_index = id_index.masked_fill(torch.rand(id_index.shape, device=id_index.device) < self.id_dropout, 0)
        # The id is added after the norm: an album without one (cold) keeps the same content
        # part as it would have with one, so content-only vectors live where warm ones do.
        content = self.norm(self.content_vectors(table))
        vectors = content + self.id_weight[id_index, None] * self.ids(id_index)
        # Albums without an id get the mean bias of those with one, not an arbitrary 0.
        bias = self.bias(id_index).squeeze(-1)
        default = self.bias.weight[1:, 0].mean() if self.bias.weight.shape[0] > 1 else bias.new_zeros(())
        if not self.training:
            default = default + self.cold_offset
        return vectors, torch.where(id_index > 0, bias, default)


class HistoryEncoder(nn.Module):
    """Causal self-attention over a right-aligned history ``[B, T, width]`` -> ``[B, T, width]``.

    Position embeddings count from the end of the window (index 0 = the most recent play):
    that is the recency information. Padding (left) is masked; each slot sees itself.
    """

    def __init__(self, width: int = 128, layers: int = 1, heads: int = 2, max_len: int = 50, dropout: float = 0.2,
                 taste: bool = True, taste_decay: float = 0.8):
        super().__init__()
        self.max_len, self.heads = max_len, heads
        # The listener's longer taste: a recency-weighted mean of the played albums' vectors
        # (weight ``decay ** age``, the decay learned from ``taste_decay``), added to the
        # attention's output. Attention alone starts out reading mostly the last play and
        # needs much data to learn to average; this gives the average from the first step.
        self.taste = taste
        if taste:  # (no parameters without it: checkpoints of models without it load as before)
            self.decay_logit = nn.Parameter(torch.logit(torch.tensor(float(taste_decay))))
            self.taste_scale = nn.Parameter(torch.tensor(1.0))
        else:
            self.register_buffer("decay_logit", torch.logit(torch.tensor(float(taste_decay))), persistent=False)
        self.positions = nn.Embedding(max_len, width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(width)

    def forward(self, items: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        batch, length, _ = items.shape
        recency = torch.arange(length - 1, -1, -1, device=items.device).clamp(max=self.max_len - 1)
        x = self.dropout(items + self.positions(recency))
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
        allowed = causal & ~padding[:, None, :]
        allowed |= torch.eye(length, dtype=torch.bool, device=items.device)
        mask = (~allowed).repeat_interleave(self.heads, dim=0)  # [B*heads, T, T], True = blocked
        hidden = self.encoder(x, mask=mask)
        if self.taste:
            hidden = hidden + self.taste_scale * self.recency_mean(items, padding)
        return self.norm(hidden)

    def recency_mean(self, items: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return recency_mean(items, padding, torch.sigmoid(self.decay_logit))


def recency_mean(items: torch.Tensor, padding: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """``[B, T, D]``: at each slot t, ``sum_s<=t decay^(t-s) items_s / sum decay^(t-s)``
    over the non-padding slots (``padding [B, T]``, True = padding)."""
    length = items.shape[1]
    steps = torch.arange(length, device=items.device)
    age = (steps[:, None] - steps[None, :]).float()                        # [T, T]
    weights = torch.where(age >= 0, decay ** age.clamp(min=0), torch.zeros_like(age))
    weights = weights[None] * (~padding)[:, None, :].float()               # [B, T, T]
    weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-6)
    return weights @ items


class GenreTaste(nn.Module):
    """The listener's taste in genre-score space -> logits over the catalog.

    The profile after each play is the recency-weighted mean (learned decay) of the played
    albums' unit genre scores, normalised; an album's score is ``sum_l w_l profile_l g_l``
    with learned per-label weights ``w [L]`` (from ``scale``): a weighted cosine, so that
    labels that say little about taste (broad families) can count less than sub-genres.
    """

    def __init__(self, n_labels: int, decay: float = 0.8, scale: float = 5.0):
        super().__init__()
        self.decay_logit = nn.Parameter(torch.logit(torch.tensor(float(decay))))
        self.label_weight = nn.Parameter(torch.full((n_labels,), float(scale)))

    def profile(self, genres: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """Played albums' unit genre rows ``[B, T, L]`` -> unit profiles ``[B, T, L]``."""
        return F.normalize(recency_mean(genres, padding, torch.sigmoid(self.decay_logit)), dim=-1)

    def forward(self, profile: torch.Tensor, genres: torch.Tensor) -> torch.Tensor:
        """``profile [..., L]`` x album rows ``genres [N, L]`` -> logits ``[..., N]``."""
        return (profile * self.label_weight) @ genres.T


class NextAlbumModel(nn.Module):
    """Histories of album indices -> logits over every album of the table."""

    def __init__(self, albums: AlbumEncoder, history: HistoryEncoder, taste: GenreTaste | None = None):
        super().__init__()
        self.albums, self.history, self.taste = albums, history, taste
        self.temperature = nn.Parameter(torch.tensor(1.0 / albums.norm.normalized_shape[0] ** 0.5))

    @property
    def max_len(self) -> int:
        return self.history.max_len

    def forward(self, sequences: torch.Tensor, table: AlbumTable, where: torch.Tensor | None = None) -> torch.Tensor:
        """``sequences [B, T]`` (right-aligned, ``PAD`` = -1) -> logits ``[B, T, N]``, or ``[P, N]``
        for only the ``P`` positions where the bool mask ``where [B, T]`` is set (cheaper)."""
        return self.logits(sequences, *self.albums(table), where=where)

    def logits(self, sequences: torch.Tensor, vectors: torch.Tensor, bias: torch.Tensor,
               genres: torch.Tensor | None = None, where: torch.Tensor | None = None) -> torch.Tensor:
        """``forward`` with the ``AlbumVectors`` (vectors ``[N, width]``, biases ``[N]``, genre
        rows ``[N, L]`` or None) already computed."""
        logits = self.project(self.hidden(sequences, vectors, where), vectors, bias)
        return logits + self.genre_logits(sequences, genres, where)

    def genre_logits(self, sequences: torch.Tensor, genres: torch.Tensor | None,
                     where: torch.Tensor | None = None) -> torch.Tensor | float:
        """The genre taste's logits ``[B, T, N]`` (``[P, N]`` at ``where``); 0 without it."""
        if self.taste is None or genres is None:
            return 0.0
        padding = sequences == PAD
        played = genres[sequences.clamp(min=0)] * (~padding).unsqueeze(-1)
        profile = self.taste.profile(played, padding)
        return self.taste(profile[where] if where is not None else profile, genres)

    def hidden(self, sequences: torch.Tensor, vectors: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
        """The history states ``[B, T, width]`` (or ``[P, width]`` at ``where``) from album ``vectors [N, width]``."""
        padding = sequences == PAD
        items = vectors[sequences.clamp(min=0)] * (~padding).unsqueeze(-1)
        hidden = self.history(items, padding)
        return hidden[where] if where is not None else hidden

    def project(self, hidden: torch.Tensor, vectors: torch.Tensor, bias: torch.Tensor | float) -> torch.Tensor:
        """States ``[..., width]`` x album vectors ``[N, width]`` -> logits ``[..., N]``."""
        # Both sides are layer-normed (norm ~ sqrt(width)): unscaled dot products start as
        # logits of +-width and the softmax saturates; a learned temperature from 1/sqrt(width).
        return (hidden @ vectors.T) * self.temperature + bias

    @torch.no_grad()
    def score(self, histories: list[list[int]], table: AlbumTable, albums: AlbumVectors | None = None) -> torch.Tensor:
        """Next-album logits ``[B, N]`` after each history (the last ``max_len`` plays are read).
        ``albums``: ``self.albums(table)`` computed once, for serving many histories."""
        albums = albums if albums is not None else self.albums(table)
        sequences = pad_right_aligned([h[-self.max_len:] for h in histories]).to(albums.vectors.device)
        last = torch.zeros_like(sequences, dtype=torch.bool)
        last[:, -1] = True
        return self.logits(sequences, *albums, where=last)


def pad_right_aligned(sequences: list[list[int]], length: int | None = None) -> torch.Tensor:
    """Lists of indices -> ``[B, T]`` long, right-aligned, left-padded with ``PAD``."""
    length = length or max((len(s) for s in sequences), default=1)
    out = torch.full((len(sequences), max(1, length)), PAD, dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            out[row, -len(seq):] = torch.as_tensor(seq[-length:], dtype=torch.long)
    return out
