"""A sparse text view: tf-idf of word pieces and word-piece bigrams, fitted on the training texts.

It reads the TextLoader's token ids (the same windows MiniLM reads), so it needs no loader
of its own. Where a few rare words carry a label, a dense sentence embedding averages them
away; a sparse view keeps them. ``fit`` chooses the vocabulary (document frequency >=
``min_df`` among the training albums, the ``max_features`` most frequent) and its idf;
both are buffers, so they are saved in checkpoints and hashed into the embedding-cache
fingerprint: a new vocabulary makes cached embeddings stale.
"""

from __future__ import annotations

from typing import Iterable

import torch

from genre_tagger.models.encoders.base import Encoder

BIGRAM_MULTIPLIER = 1_000_003


class SparseTextView(Encoder):
    """``{"input_ids": [B, K, T], "attention_mask": [B, K, T], "chunk_mask": [B, K]}`` ->
    L2-normalised tf-idf ``[B, max_features]`` (sublinear tf: ``1 + log count``).

    Terms: word-piece ids ``< vocab_size`` and bigrams of adjacent pieces hashed into
    ``bigram_buckets`` ids after them. Not usable before ``fit`` (or a loaded state).
    """

    modality = "text"
    needs_fit = True

    def __init__(self, vocab_size: int = 30522, bigram_buckets: int = 131072, max_features: int = 8192,
                 min_df: int = 2, frozen: bool = True):
        super().__init__(frozen=True)
        self.vocab_size, self.bigram_buckets = vocab_size, bigram_buckets
        self.max_features, self.min_df = max_features, min_df
        self.out_dim = max_features
        self.register_buffer("column", torch.full((vocab_size + bigram_buckets,), -1, dtype=torch.long))
        self.register_buffer("idf", torch.zeros(max_features))
        self.freeze()

    def terms(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Term ids ``[B, K, 2T-1]`` and their validity mask (real tokens of real chunks)."""
        ids = inputs["input_ids"].long().clamp(0, self.vocab_size - 1)
        mask = inputs["attention_mask"].bool() & inputs["chunk_mask"].unsqueeze(-1)
        bigrams = (ids[..., :-1] * BIGRAM_MULTIPLIER + ids[..., 1:]) % self.bigram_buckets + self.vocab_size
        return torch.cat([ids, bigrams], dim=-1), torch.cat([mask, mask[..., :-1] & mask[..., 1:]], dim=-1)

    @torch.no_grad()
    def fit(self, batches: Iterable[dict[str, torch.Tensor]]) -> None:
        """Vocabulary and idf from the training albums' batches (each album is one document)."""
        total = self.vocab_size + self.bigram_buckets
        df = torch.zeros(total, dtype=torch.long)
        n_docs = 0
        for inputs in batches:
            terms, valid = self.terms(inputs)
            for row in torch.nonzero(inputs["present"]).flatten().tolist():
                df[torch.unique(terms[row][valid[row]])] += 1
                n_docs += 1
        candidates = torch.nonzero(df >= self.min_df).flatten()
        chosen = candidates[torch.argsort(df[candidates], descending=True, stable=True)[: self.max_features]]
        self.column.fill_(-1)
        self.column[chosen] = torch.arange(len(chosen))
        self.idf.zero_()
        self.idf[: len(chosen)] = torch.log((1.0 + n_docs) / (1.0 + df[chosen].float())) + 1.0

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if not bool((self.column >= 0).any()):
            raise RuntimeError("SparseTextView is not fitted: its vocabulary comes from the training texts")
        terms, valid = self.terms(inputs)
        columns = self.column[terms]
        valid = valid & (columns >= 0)
        batch = terms.shape[0]
        rows = torch.arange(batch, device=terms.device).view(-1, 1, 1).expand_as(terms)
        counts = torch.zeros(batch * self.max_features, device=terms.device)
        counts.index_add_(0, (rows * self.max_features + columns)[valid], torch.ones(int(valid.sum()), device=terms.device))
        counts = counts.view(batch, self.max_features)
        weights = torch.where(counts > 0, 1.0 + torch.log(counts.clamp(min=1.0)), counts) * self.idf
        return weights / weights.norm(dim=1, keepdim=True).clamp(min=1e-8)
