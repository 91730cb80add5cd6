"""What one server answers from (``Served``): the catalog and whatever models it was given,
what it can do with them, and the music map (made once)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException

from genre_tagger import __version__
from genre_tagger.data.modalities import get_modality
from genre_tagger.serve.catalog import MAX_LIMIT, SORTS, STATUSES, Catalog
from genre_tagger.serve.models import Recommendations, Tagger
from genre_tagger.serve.uploads import MAX_UPLOAD_BYTES
from genre_tagger.serve.vectors import MAP_POINTS, Vectors

MAX_K = 100  # results per search / similar / recommend request


def missing_index() -> str:
    return "no search index: start serve with --index INDEX_DIR (made by `genre-tagger index`)"


@dataclass
class Served:
    """What one server answers from; everything but the catalog is optional."""

    catalog: Catalog
    vectors: Vectors | None = None
    tagger: Tagger | None = None
    recommender: Recommendations | None = None
    token: str | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    notes: dict[str, str] = field(default_factory=dict)  # why a feature is off
    _map: bytes | None = None

    def features(self) -> dict[str, Any]:
        kinds = self.vectors.query_kinds() if self.vectors is not None else []
        return {"tags": self.catalog.tags is not None, "similar": "like" in kinds, "map": self.vectors is not None,
                "search_text": "text" in kinds, "search_audio": "audio" in kinds, "search_cover": "cover" in kinds,
                "tag": self.tagger is not None, "recommend": self.recommender is not None,
                "audit": self.catalog.audit is not None}

    def info(self) -> dict[str, Any]:
        notes = dict(self.notes)
        if self.vectors is not None and self.vectors.unavailable:
            notes.setdefault("search", self.vectors.unavailable)
        return {"version": __version__, "counts": self.catalog.counts(), "features": self.features(),
                "notes": notes, "indexed": self.vectors.size if self.vectors is not None else 0,
                "labels": [g["genre"] for g in self.catalog.genre_counts],
                "tag_modalities": [get_modality(m).word for m in self.tagger.modalities] if self.tagger else [],
                "limits": {"max_limit": MAX_LIMIT, "max_k": MAX_K, "upload_mb": self.max_upload_bytes // 2**20},
                "sorts": list(SORTS), "statuses": list(STATUSES)}

    def map_json(self) -> bytes:
        """The music map, made on first use (``open_served`` makes it at start-up)."""
        if self._map is None:
            if self.vectors is None:
                raise HTTPException(409, missing_index())
            points = self.vectors.map_points(MAP_POINTS)
            known = self.catalog.map_rows()
            keep = [i for i, album_id in enumerate(points.ids) if album_id in known]
            genres = [known[points.ids[i]][0] for i in keep]
            order = _by_count(genres)
            slot = {g: i for i, g in enumerate(order)}
            self._map = json.dumps({
                "ids": [points.ids[i] for i in keep],
                "x": [round(float(points.xy[i, 0]), 4) for i in keep],
                "y": [round(float(points.xy[i, 1]), 4) for i in keep],
                "label": [known[points.ids[i]][1] for i in keep],
                "genre": [slot.get(g, -1) if g else -1 for g in genres],
                "genres": order, "indexed": self.vectors.size,
            }, ensure_ascii=False).encode()
        return self._map


def _by_count(values: list) -> list:
    counts = Counter(v for v in values if v)
    return sorted(counts, key=lambda g: (-counts[g], g))
