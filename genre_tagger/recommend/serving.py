"""`genre-tagger recommend`: top-k next albums for a history or for users of an events file."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from genre_tagger.errors import UserInputError
from genre_tagger.recommend.catalog import album_table, recommender_content
from genre_tagger.recommend.interactions import read_catalog, read_listening
from genre_tagger.recommend.store import load_recommender


class Recommender:
    """A trained model over one catalog, ready to score histories (album ids, oldest first)."""

    def __init__(self, model: str | Path, manifest: str | Path, progress: bool = False):
        self.bundle = load_recommender(model)
        records = read_catalog(manifest)
        self.ids = [r.id for r in records]
        self.index = {album: i for i, album in enumerate(self.ids)}
        content, present = recommender_content(self.bundle, records, manifest, 0, progress)
        inputs = list(self.bundle.input_dims)
        self.table = album_table(self.ids, {m: content[m] for m in inputs}, {m: present[m] for m in inputs},
                                 self.bundle.id_vocabulary)
        self.bundle.model.eval()
        with torch.no_grad():  # album vectors do not depend on the history: once per catalog
            self.albums = self.bundle.model.albums(self.table)

    def indices(self, history: list[str], who: str = "--history") -> list[int]:
        unknown = [album for album in history if album not in self.index]
        if unknown:
            raise UserInputError(f"{who}: album id(s) not in the manifest: {', '.join(unknown[:5])}")
        return [self.index[album] for album in history]

    def top_k(self, histories: list[list[int]], k: int) -> list[list[dict]]:
        scores = self.bundle.model.score(histories, self.table, self.albums).float().numpy()
        out = []
        for row, history in zip(scores, histories):
            row = row.copy()
            row[history] = -np.inf  # never recommend what was already played
            best = np.argsort(-row, kind="stable")[:k]
            out.append([{"id": self.ids[i], "score": round(float(row[i]), 4)} for i in best if np.isfinite(row[i])])
        return out


def recommend(model: str | Path, manifest: str | Path, history: list[str] | None = None,
              events: str | Path | None = None, users: list[str] | None = None, top_k: int = 10,
              progress: bool = False) -> Iterator[dict]:
    """Yields ``{"user": ..., "recommendations": [{"id", "score"}]}`` per history: ``history``
    (album ids, oldest first), or each of ``users`` from ``events`` (each skipped event is
    reported on stderr with its line number; the user's other events are used)."""
    if top_k < 1:
        raise UserInputError(f"--top-k must be at least 1, got {top_k}")
    if (history is None) == (events is None):
        raise UserInputError("give either --history ID1,ID2,... or --events FILE --users U1,U2")
    engine = Recommender(model, manifest, progress)
    if history is not None:
        if not history:
            raise UserInputError("--history is empty")
        named = [("history", engine.indices(history))]
    else:
        if not users:
            raise UserInputError("--events needs --users U1,U2,...")
        log = read_listening(events, engine.ids)
        missing = [u for u in users if u not in log.histories]
        if missing:
            raise UserInputError(f"{events}: no usable event for user(s) {', '.join(missing[:5])}")
        named = [(u, engine.indices(log.histories[u], f"{events}")) for u in users]
    for start in range(0, len(named), 256):
        chunk = named[start:start + 256]
        for (user, _), recs in zip(chunk, engine.top_k([h for _, h in chunk], top_k)):
            yield {"user": user, "recommendations": recs}
