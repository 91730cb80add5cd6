"""`genre-tagger search`: nearest albums of an index to a text, an indexed album, an audio
file or a cover file. One JSON object per query on stdout:
``{"query": {...}, "results": [{"id", "score", ...the album's extra manifest fields}]}``."""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from genre_tagger.data.manifest.fields import LineContext, build_record
from genre_tagger.data.modalities import get_modality
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.features import ModalityFeatures
from genre_tagger.search import faiss_index
from genre_tagger.search.index import IndexMeta
from genre_tagger.search.model import SearchModel, load_search_model


class BadQuery(UserInputError):
    """One query that cannot be answered (the others still are)."""


@dataclass
class Query:
    kind: str  # text | like, or the word of an album-side modality with files (audio | cover)
    value: str

    def describe(self) -> dict:
        return {self.kind: self.value}


class SearchIndex:
    """An index folder opened for queries; the checkpoint is loaded only when a query needs it."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.meta = IndexMeta.read(self.folder)
        if not (self.folder / "index.faiss").is_file():
            raise UserInputError(f"{self.folder}: index.faiss missing (an interrupted `index` run?): run it again")
        self.index = faiss_index.load(self.folder / "index.faiss")
        self.ids: list[str] = []
        for part in self.meta.parts:
            self.ids += pq.read_table(self.folder / part["file"], columns=["id"]).column("id").to_pylist()
        self.position = {album_id: i for i, album_id in enumerate(self.ids)}
        self.starts = [0, *accumulate(p["rows"] for p in self.meta.parts)]
        self._model: SearchModel | None = None

    @property
    def model(self) -> SearchModel:
        if self._model is None:
            self._model = load_search_model(self.meta.checkpoint)
        return self._model

    def fields(self, position: int) -> dict:
        part = bisect_right(self.starts, position) - 1
        table = pq.read_table(self.folder / self.meta.parts[part]["file"], columns=["fields"])
        return json.loads(table.column("fields")[position - self.starts[part]].as_py())

    def vector(self, query: Query) -> tuple[np.ndarray, int | None]:
        """``[1, width]`` query vector and the position to leave out (the album itself for ``like``)."""
        if query.kind == "like":
            if query.value not in self.position:
                raise BadQuery(f"--like: unknown album id {query.value!r} (not in {self.folder})")
            position = self.position[query.value]
            return self.index.reconstruct(position).reshape(1, -1), position
        if query.kind == "text":
            if not query.value.strip():
                raise BadQuery("--text: empty query text")
            features, view = self._embed(self.model.text_side, AlbumRecord(id="query", texts=[query.value]), "--text")
            return self.model.text(features, view), None
        return self._file_vector(query), None

    def _file_vector(self, query: Query) -> np.ndarray:
        """``[1, width]`` of one file, read as a one-album manifest naming it in the field of
        the album-side modality whose word the query's kind is (``--cover``: the cover)."""
        what = f"--{query.kind} {query.value}"
        modality = next((m for m in self.model.album_side if get_modality(m).word == query.kind), None)
        if modality is None:
            raise BadQuery(f"{what}: the checkpoint's joint space has no {query.kind} branch")
        line = {"id": "query", get_modality(modality).fields[0]: str(query.value)}
        record = build_record(line, LineContext(line=0, base=Path.cwd(), tabular=False))
        return self.model.album(*self._embed(modality, record, what))[0]

    def _embed(self, modality: str, record: AlbumRecord, what: str
               ) -> tuple[dict[str, ModalityFeatures], ModalityFeatures | None]:
        """The one record's features of ``modality`` (and the view's, for the text side)."""
        features, view = self.model.embed([record], None, [modality], num_workers=0, progress=False)
        if not features[modality].present[0]:
            raise BadQuery(f"{what}: {'; '.join(features[modality].warnings[0]) or 'nothing usable'}")
        return features, view

    def search(self, query: Query, top_k: int = 10) -> dict:
        vector, leave_out = self.vector(query)
        wanted = min(top_k + (leave_out is not None), len(self.ids))
        scores, positions = self.index.search(np.ascontiguousarray(vector, np.float32), wanted)
        results = []
        for score, position in zip(scores[0].tolist(), positions[0].tolist()):
            if position < 0 or position == leave_out or len(results) == top_k:
                continue
            results.append({"id": self.ids[position], "score": round(float(score), 4),
                            **{k: v for k, v in self.fields(position).items() if k not in ("id", "score")}})
        return {"query": query.describe(), "results": results}
