"""A sparse text view: tf-idf of word pieces and word-piece bigrams, fitted on the training texts.

It reads the TextLoader's token ids (the same windows MiniLM reads), so it needs no loader
of its own. Where a few rare words carry a label, a dense sentence embedding averages them
away; a sparse view keeps them. ``fit`` chooses the vocabulary (document frequency >=
``min_df`` among the training albums, the ``max_features`` most frequent) and its idf;
both are buffers, so they are saved in checkpoints and hashed into the embedding-cache
fingerprint: a new vocabulary makes cached embeddings stale.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from genre_tagger.models.encoders.base import Encoder

BIGRAM_MULTIPLIER = 1_000_003
WORD_MODULUS = 2_147_483_629  # prime < 2^31: products with piece ids stay inside int64
WORD_BASE = 1_000_003
MAX_PIECES = 64


def tokenizer_ids(tokenizer: Any, mask: str, vocab_size: int) -> torch.Tensor:
    """``[vocab_size]`` bool: the ids ``tokenizer.<mask>(vocab_size)`` marks
    (``continuation_mask``: pieces that continue a word, WordPiece ``##``; ``symbol_mask``:
    special tokens and punctuation); none for a tokenizer without that method (its tokens are
    whole words)."""
    mark = getattr(tokenizer, mask, None)
    return mark(vocab_size) if mark is not None else torch.zeros(vocab_size, dtype=torch.bool)


def word_terms(ids: torch.Tensor, mask: torch.Tensor, continuation: torch.Tensor, word_buckets: int,
               bigram_buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-word and word-bigram term ids ``[B, K, 2T]`` from piece ids ``[B, K, T]``.

    A word starts at every valid piece that is not a continuation (or opens its window);
    its hash is ``sum(id_j * BASE^j) mod p`` over its pieces j, placed at its first piece;
    its bigram pairs it with the next word's hash. Valid only at word starts.
    """
    steps = ids.shape[-1]
    position = torch.arange(steps, device=ids.device).expand_as(ids)
    starts = mask & (~continuation[ids] | (position == 0))
    start_of = torch.where(starts, position, torch.full_like(position, -1)).cummax(dim=-1).values.clamp(min=0)
    powers = torch.ones(MAX_PIECES, dtype=torch.long, device=ids.device)
    for k in range(1, MAX_PIECES):
        powers[k] = powers[k - 1] * WORD_BASE % WORD_MODULUS
    parts = ids * powers[(position - start_of).clamp(max=MAX_PIECES - 1)] % WORD_MODULUS * mask
    words = torch.zeros_like(ids).scatter_add_(-1, start_of, parts) % WORD_MODULUS
    # The next word's start after each position: a reversed running minimum of start positions.
    later = torch.where(starts, position, torch.full_like(position, steps))
    next_start = later.flip(-1).cummin(dim=-1).values.flip(-1)
    next_start = torch.cat([next_start[..., 1:], torch.full_like(next_start[..., :1], steps)], dim=-1)
    has_next = starts & (next_start < steps)
    following = words.gather(-1, next_start.clamp(max=steps - 1))
    unigrams = words % word_buckets
    bigrams = (words * BIGRAM_MULTIPLIER + following) % bigram_buckets + word_buckets
    return torch.cat([unigrams, bigrams], dim=-1), torch.cat([starts, has_next], dim=-1)


class SparseTextView(Encoder):
    """``{"input_ids": [B, K, T], "attention_mask": [B, K, T], "chunk_mask": [B, K]}`` ->
    L2-normalised tf-idf ``[B, max_features]`` (sublinear tf: ``1 + log count``).

    Terms (``units="pieces"``): word-piece ids ``< vocab_size`` and bigrams of adjacent
    pieces hashed into ``bigram_buckets`` ids after them. ``units="words"`` first joins each
    word's pieces (a piece and the ``##`` continuations after it, as ``tokenizer``, the text
    loader's own, marks them; its config is a reference to the loader's) and hashes whole words into
    the first ``word_buckets`` ids and word bigrams after them: a rare invented word split
    into common pieces stays one term. ``keep_symbols`` False: special tokens (``[CLS]``,
    ``[SEP]``) and punctuation are no terms (with ``units="words"`` a bigram joins the words
    on either side of them), as a classic word tokenizer counts; True, the form views were
    fitted with before, counts them. Not usable before ``fit`` (or a loaded state).
    """

    modality = "text"
    needs_fit = True
    sparse_output = True  # linear probes scale the view as a whole (models/probes.py)

    def __init__(self, vocab_size: int = 30522, bigram_buckets: int = 131072, max_features: int = 8192,
                 min_df: int = 2, units: str = "pieces", tokenizer: Any = None,
                 word_buckets: int = 262144, keep_symbols: bool = True, frozen: bool = True):
        super().__init__(frozen=True)
        if units not in ("pieces", "words"):
            raise ValueError(f"SparseTextView units must be 'pieces' or 'words', got {units!r}")
        self.vocab_size, self.bigram_buckets = vocab_size, bigram_buckets
        self.max_features, self.min_df, self.units = max_features, min_df, units
        self.out_dim = max_features
        self.unigram_ids = word_buckets if units == "words" else vocab_size
        self.register_buffer("column", torch.full((self.unigram_ids + bigram_buckets,), -1, dtype=torch.long))
        self.register_buffer("idf", torch.zeros(max_features))
        # Which piece ids continue a word (a buffer: part of the state and the cache fingerprint).
        continuation = tokenizer_ids(tokenizer, "continuation_mask", vocab_size) if units == "words" else torch.zeros(0, dtype=torch.bool)
        self.register_buffer("continuation", continuation)
        # Which ids are no word: state when used (a view rebuilt without its tokenizer still
        # knows them), absent from the state otherwise, as in views saved before it existed.
        self.keep_symbols = keep_symbols
        if keep_symbols:
            self.register_buffer("symbols", torch.zeros(0, dtype=torch.bool), persistent=False)
        else:
            self.register_buffer("symbols", tokenizer_ids(tokenizer, "symbol_mask", vocab_size))
        self.freeze()

    def terms(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Term ids ``[B, K, 2T(-1)]`` and their validity mask (real tokens of real chunks)."""
        ids = inputs["input_ids"].long().clamp(0, self.vocab_size - 1)
        mask = inputs["attention_mask"].bool() & inputs["chunk_mask"].unsqueeze(-1)
        if not self.keep_symbols:
            mask = mask & ~self.symbols[ids]
        if self.units == "words":
            return word_terms(ids, mask, self.continuation, self.unigram_ids, self.bigram_buckets)
        bigrams = (ids[..., :-1] * BIGRAM_MULTIPLIER + ids[..., 1:]) % self.bigram_buckets + self.vocab_size
        return torch.cat([ids, bigrams], dim=-1), torch.cat([mask, mask[..., :-1] & mask[..., 1:]], dim=-1)

    @torch.no_grad()
    def fit(self, batches: Iterable[dict[str, torch.Tensor]]) -> None:
        """Vocabulary and idf from the training albums' batches (each album is one document)."""
        total = self.unigram_ids + self.bigram_buckets
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
