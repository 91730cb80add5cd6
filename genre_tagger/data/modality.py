"""The one interface every modality loader implements.

A loader turns an ``AlbumRecord`` into model-ready tensors for its modality and stacks
those of a batch into zero-filled tensors plus a boolean presence mask. Loaders are
plain objects, built from config (class_path + init_args), picklable for DataLoader
worker processes, and their ``settings()`` travel inside checkpoints so that inference
preprocesses exactly as training did.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from genre_tagger.data.records import AlbumRecord


class ModalityLoader:
    """Base class. Subclasses set ``modality`` and implement ``load`` and ``collate``."""

    modality: str = ""

    def load(self, record: AlbumRecord, training: bool = False) -> tuple[Any | None, list[str]]:
        """Load this modality of one album.

        Returns ``(item, warnings)``: ``item`` is None when the modality is absent or
        nothing of it could be used; each warning reads ``"<field>: <reason>"`` and names
        the file, e.g. ``"cover: cannot decode 'covers/x.jpg': truncated file"``.
        ``training`` enables random crops / augmentation; otherwise loading is deterministic.
        """
        raise NotImplementedError

    def collate(self, items: list[Any | None]) -> dict[str, torch.Tensor]:
        """Stack a batch: zero-filled tensors plus ``"present"``: ``[B]`` bool."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The init args that rebuild this loader (stored in checkpoints)."""
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """class_path + init_args of this loader, for configs and checkpoints."""
        return {"class_path": public_path(type(self)), "init_args": self.settings()}

    def cache_spec(self) -> dict[str, Any]:
        """What the embedding cache keys this loader's output by: its spec, less settings that
        do not change what it reads now (e.g. a text loader's budget for another use)."""
        return self.spec()

    def for_tagging(self) -> "ModalityLoader":
        """The loader reading albums to tag them (a text loader may read fewer windows than it
        trained on); the same loader unless a subclass has such a budget."""
        return self


def public_path(cls: type) -> str:
    """The shortest import path of ``cls``: ``genre_tagger.data.audio.AudioLoader`` rather than
    ``genre_tagger.data.audio.loader.AudioLoader`` when the package exports it. Checkpoints
    written before a module became a package keep naming what is still importable."""
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is not None and getattr(module, cls.__qualname__, None) is cls:
            return f"{module.__name__}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"
