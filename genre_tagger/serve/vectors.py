"""The served search index: "more like this", text / audio / cover queries, and the music map.

Queries go through the search job's own ``SearchIndex`` (``search/query.py``): its
``vector`` turns a query into a search vector exactly as `genre-tagger search` does (the
same loaders, checkpoint and joint space); the nearest albums come from its FAISS index.
Results carry only id and score here; the routes add what the catalog knows of each album
(no per-result Parquet reads).

Text, audio and cover queries need the checkpoint the index was built with: ``--checkpoint``
when it holds the index's joint space, else the checkpoint the index names, when that file
is still there. The music map is a 2-D PCA of the index's vectors, computed once at start-up
from its Parquet parts, streaming (a d x d covariance; memory stays flat in the catalog size).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from genre_tagger.data.modalities import get_modality
from genre_tagger.errors import UserInputError
from genre_tagger.search.index import part_vectors
from genre_tagger.search.model import SearchModel, load_search_model
from genre_tagger.search.query import BadQuery, Query, SearchIndex
from genre_tagger.serve.models import MODEL_LOCK

MAP_POINTS = 50_000  # at most this many albums on the map (an even sample beyond)
TEXT_CACHE = 256  # text queries whose vectors are kept


class Unavailable(Exception):
    """What this server cannot do with the inputs it was given (the message says what is missing)."""


class NotIndexed(Exception):
    """An album id the index does not hold."""


class _Index(SearchIndex):
    """A ``SearchIndex`` whose model may be given (``--checkpoint``, already loaded)."""

    def __init__(self, folder: Path, model: SearchModel | None):
        super().__init__(folder)
        self._given = model

    @property
    def model(self) -> SearchModel:
        return self._given if self._given is not None else super().model


@dataclass
class MapPoints:
    ids: list[str]
    xy: np.ndarray  # [N, 2] float32, each axis scaled to [-1, 1]


class Vectors:
    """An index folder opened for serving; ``model`` is the ``--checkpoint``'s search model, if any."""

    def __init__(self, folder: str | Path, model: SearchModel | None = None,
                 say: Callable[[str], None] = print):
        self.folder = Path(folder)
        self.index = _Index(self.folder, None)  # UserInputError when it is not an index
        meta_checkpoint = self.index.meta.checkpoint
        self.model: SearchModel | None = None
        self.unavailable = ""
        if model is not None and model.digest == self.index.meta.space:
            self.model = model
        else:
            if model is not None:
                say(f"warning: --checkpoint {model.path} does not hold the joint space {self.folder} was built with "
                    f"({meta_checkpoint})")
            if meta_checkpoint and Path(meta_checkpoint).is_file():
                try:
                    self.model = load_search_model(meta_checkpoint)
                except UserInputError as err:
                    self.unavailable = f"the index's checkpoint cannot be used: {err}"
            else:
                self.unavailable = (f"text, audio and cover search need the checkpoint {self.folder} was built with "
                                    f"({meta_checkpoint} is gone): start serve with --checkpoint CKPT")
        if self.model is not None:
            self.index._given = self.model
        self._texts: OrderedDict[str, np.ndarray] = OrderedDict()  # recent text queries' vectors (LRU)
        self._texts_lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self.index.ids)

    def query_kinds(self) -> list[str]:
        """The query kinds this index can answer: ``like`` always; ``text`` and the album-side
        file kinds (``audio``, ``cover``) with its checkpoint."""
        kinds = ["like"]
        if self.model is not None:
            kinds.append("text")
            kinds += [get_modality(m).word for m in self.model.album_side if m != self.model.text_side]
        return kinds

    def nearest(self, vector: np.ndarray, k: int, leave_out: int | None = None) -> list[dict]:
        import faiss

        # One thread per query. ``faiss_index.load`` set that for the thread that loaded the
        # index only: OpenMP keeps the setting per thread, and requests run in pool threads,
        # where a default team per tiny search cost a third of the route's throughput.
        faiss.omp_set_num_threads(1)
        wanted = min(k + (leave_out is not None), self.size)
        scores, positions = self.index.index.search(np.ascontiguousarray(vector, np.float32), wanted)
        results = []
        for score, position in zip(scores[0].tolist(), positions[0].tolist()):
            if position < 0 or position == leave_out or len(results) == k:
                continue
            results.append({"id": self.index.ids[position], "score": round(float(score), 4)})
        return results

    def similar(self, album_id: str, k: int) -> list[dict]:
        if album_id not in self.index.position:
            raise NotIndexed(f"album {album_id!r} is not in the search index {self.folder.name} "
                             "(nothing usable to embed, or added after `genre-tagger index` ran)")
        vector, leave_out = self.index.vector(Query("like", album_id))
        return self.nearest(vector, k, leave_out)

    def search(self, kind: str, value: str, k: int) -> list[dict]:
        """Nearest albums to a text (``kind="text"``) or a file (``"audio"``, ``"cover"``: its path)."""
        if self.model is None:
            raise Unavailable(self.unavailable)
        if kind not in self.query_kinds():
            raise Unavailable(f"the index's joint space has no {kind} branch")
        vector = self._recent(value) if kind == "text" else None  # the page asks again on "back"
        if vector is None:
            with MODEL_LOCK:
                vector, _ = self.index.vector(Query(kind, value))  # BadQuery: the input is unusable
            if kind == "text":
                self._remember(value, vector)
        return self.nearest(vector, k)

    def _recent(self, text: str) -> np.ndarray | None:
        with self._texts_lock:
            if text not in self._texts:
                return None
            self._texts.move_to_end(text)
            return self._texts[text]

    def _remember(self, text: str, vector: np.ndarray) -> None:
        with self._texts_lock:
            self._texts[text] = vector
            while len(self._texts) > TEXT_CACHE:
                self._texts.popitem(last=False)

    def map_points(self, limit: int = MAP_POINTS) -> MapPoints:
        """A 2-D PCA of the index vectors (an even sample of ``limit`` albums when larger)."""
        meta = self.index.meta
        n, dim = meta.count, meta.dim
        total, outer = np.zeros(dim, np.float64), np.zeros((dim, dim), np.float64)
        for vectors in part_vectors(self.folder, meta):
            v = vectors.astype(np.float64)
            total += v.sum(0)
            outer += v.T @ v
        mean = total / max(n, 1)
        covariance = outer / max(n, 1) - np.outer(mean, mean)
        _, vectors_ = np.linalg.eigh(covariance)
        axes = vectors_[:, ::-1][:, :2]
        keep = np.unique(np.linspace(0, n - 1, min(limit, n)).round().astype(np.int64)) if n else np.zeros(0, np.int64)
        xy, start = [], 0
        for vectors in part_vectors(self.folder, meta):
            rows = keep[(keep >= start) & (keep < start + len(vectors))] - start
            xy.append((vectors[rows].astype(np.float64) - mean) @ axes)
            start += len(vectors)
        points = np.concatenate(xy) if xy else np.zeros((0, 2))
        scale = np.abs(points).max(0) if len(points) else np.ones(2)
        points = points / np.where(scale > 0, scale, 1.0)
        return MapPoints([self.index.ids[i] for i in keep.tolist()], points.astype(np.float32))


__all__ = ["BadQuery", "MapPoints", "NotIndexed", "Unavailable", "Vectors"]
