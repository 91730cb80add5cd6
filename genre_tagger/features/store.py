"""The on-disk embedding store: append-only ``.npz`` shards per (modality, fingerprint).

A shard holds ``keys [n]``, ``embeddings [n, D]`` float32, ``present [n]`` bool and
``warnings [n]`` (JSON lists). Shards are written atomically every few hundred albums, so
an interrupted extraction resumes where it stopped; a torn shard is ignored.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARD_ALBUMS = 512


@dataclass
class ModalityFeatures:
    """One modality over N albums: ``embeddings [N, D]``, ``present [N]``, warnings per album."""

    embeddings: np.ndarray
    present: np.ndarray
    warnings: list[list[str]]


class EmbeddingStore:
    """The shard folder of one (modality, fingerprint)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def load(self) -> dict[str, tuple[np.ndarray, bool, list[str]]]:
        entries: dict[str, tuple[np.ndarray, bool, list[str]]] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    for key, vector, present, warnings in zip(
                        data["keys"], data["embeddings"], data["present"], data["warnings"]
                    ):
                        entries[str(key)] = (vector, bool(present), json.loads(str(warnings)))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                continue  # a torn shard from a crash: its albums are simply recomputed
        return entries

    def append(self, keys: list[str], embeddings: np.ndarray, present: np.ndarray, warnings: list[list[str]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"shard-{uuid.uuid4().hex}.npz"
        partial = final.with_suffix(".tmp.npz")
        np.savez(
            partial, keys=np.array(keys), embeddings=embeddings.astype(np.float32),
            present=present.astype(bool), warnings=np.array([json.dumps(w) for w in warnings]),
        )
        partial.replace(final)  # atomic: a shard is either whole or absent


def flush(store: EmbeddingStore, pending: list) -> None:
    keys, vectors, present, warnings = zip(*pending)
    store.append(list(keys), np.stack(vectors), np.array(present), list(warnings))
    pending.clear()
