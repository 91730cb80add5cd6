"""A toy fourth modality, defined entirely outside the library: chord sheets.

A manifest line may carry ``"chords": ["Am", "F", "C", "G", ...]`` (an extra field, so it
arrives in ``AlbumRecord.extra``). ``register(MODALITY)`` adds the modality; the loader and
encoder below are named in a config overlay like any built-in one. A real plug-in would
register at import of its module, so that DataLoader workers started by ``spawn`` register
it too when they unpickle the loader; the tests register it only while they run, so that
other tests keep seeing the built-in three.
"""

from __future__ import annotations

import zlib
from typing import Any

import torch
from torch import nn

from genre_tagger.data.modalities import Modality
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.models.encoders.base import Encoder

NAME = "chords"


def _chords(record: AlbumRecord) -> list[str]:
    value = record.extra.get(NAME)
    return [str(c) for c in value] if isinstance(value, list) else []


MODALITY = Modality(name=NAME, word="chord sheet", fields=(NAME,), present=lambda r: bool(_chords(r)),
                    key_inputs=_chords)


class ChordLoader(ModalityLoader):
    """Chords -> a normalised bag of hashed chord symbols ``[vocab]``. Batch:
    ``{"bag": [B, vocab] float, "present": [B] bool}``."""

    modality = NAME

    def __init__(self, vocab: int = 32):
        self.vocab = int(vocab)

    def settings(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def load(self, record: AlbumRecord, training: bool = False) -> tuple[torch.Tensor | None, list[str]]:
        chords = _chords(record)
        if not chords:
            return None, []
        bag = torch.zeros(self.vocab)
        for chord in chords:
            bag[zlib.crc32(chord.encode()) % self.vocab] += 1.0
        return bag / len(chords), []

    def collate(self, items: list[torch.Tensor | None]) -> dict[str, torch.Tensor]:
        present = torch.tensor([item is not None for item in items], dtype=torch.bool)
        bag = torch.stack([item if item is not None else torch.zeros(self.vocab) for item in items])
        return {"bag": bag, "present": present}


class ChordEncoder(Encoder):
    """``{"bag": [B, vocab]}`` -> ``[B, out_dim]``."""

    def __init__(self, vocab: int = 32, out_dim: int = 16, frozen: bool = False):
        super().__init__(frozen=frozen)
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(vocab, out_dim), nn.GELU())

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(inputs["bag"].float())
