"""The loaded models behind ``POST /api/tag`` and ``POST /api/recommend``.

``Tagger``: the ``--checkpoint``'s ``TaggerBundle``; an upload becomes a one-album record
decoded by the checkpoint's own loaders (the hardened ones `tag` uses) and scored through
the one prediction path (``TaggerBundle.predict``), and the answer is the record `tag`
writes for it (``RecordBuilder``, the calibrated thresholds, top 10 scores).

``Recommendations``: the ``--recommender``'s model over the served manifest
(``recommend.serving.Recommender``), album vectors computed once at start-up.

Every model call of the server (these two, and query encoding in ``vectors.py``) holds
``MODEL_LOCK``: the checkpoint's tokenizers and decoders are not re-entrant, one bundle may
serve both uploads and text search, and on a small machine a queue is faster than contention.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from genre_tagger.bundle import TaggerBundle
from genre_tagger.data.modalities import declared_modalities
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.tagging.records import TagOptions

MODEL_LOCK = threading.Lock()


class Tagger:
    """``tag`` for one uploaded album."""

    def __init__(self, bundle: TaggerBundle, top_k: int = 10):
        self.bundle = bundle
        self.builder = TagOptions(top_k=top_k).builder(bundle)

    @property
    def modalities(self) -> list[str]:
        return self.bundle.modalities

    def tag(self, record: AlbumRecord) -> dict[str, Any]:
        """The §4 record of ``record`` (``status`` "error" with the cause when nothing was usable)."""
        with MODEL_LOCK:
            scores, present, warnings = self.bundle.predict([record], batch_size=1, num_workers=0, device="cpu",
                                                            progress=False)
        used = [m for m in self.bundle.modalities if bool(present[m][0])]
        meta = {"id": record.id, "declared": declared_modalities(record), "extra": dict(record.extra)}
        return self.builder.album(meta, scores[0], used, warnings[0])


class Recommendations:
    """Next albums for a listening history (album ids of the served manifest, oldest first)."""

    def __init__(self, model: str | Path, manifest: str | Path):
        from genre_tagger.recommend.serving import Recommender

        if not Path(model).is_file():
            raise UserInputError(f"recommender not found: {model}")
        self.engine = Recommender(model, manifest)

    def recommend(self, history: list[str], k: int) -> list[dict]:
        indices = self.engine.indices(history, "history")  # UserInputError names unknown ids
        with MODEL_LOCK:
            return self.engine.top_k([indices], k)[0]
