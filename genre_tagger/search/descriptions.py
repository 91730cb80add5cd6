"""Text sources for the joint space (CrossMuSim's second source): descriptions generated
from what is known of an album. Pluggable: anything with ``describe(record) -> list[str]``
named by ``class_path`` in ``configs/search/*.yaml`` (a language model could plug in here).

``TemplateDescriptions`` (the default) fills sentence templates with the album's genres,
the tags a pretrained audio model gave it (a manifest field, ``tags`` by default, e.g. the
``genres`` of ``genre-tagger tag --checkpoint pretrained:musicnn-mtt`` joined back by id)
and its metadata (title, artist, year, ...). An album with nothing to say gets no description.
"""

from __future__ import annotations

import random
from typing import Protocol, Sequence

from genre_tagger.data.records import AlbumRecord

GENRE_TEMPLATES = (
    "A {genres} album.",
    "{genres} music.",
    "An album of {genres}.",
    "This record sits between {genres}.",
    "Music in the style of {genres}.",
    "Sounds like {genres}.",
)
TAG_TEMPLATES = ("It sounds {tags}.", "Tagged as {tags}.")
META_TEMPLATES = ("\"{title}\" by {artist}.", "From {artist}.", "Titled \"{title}\".")


class DescriptionSource(Protocol):
    def describe(self, record: AlbumRecord) -> list[str]:
        """Zero or more descriptions of ``record`` (deterministic for a given record)."""


def _join(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


class TemplateDescriptions:
    """``per_album`` descriptions per album from templates, each naming up to ``max_genres``
    of its genres in random order, ``max_tags`` tags, and (with ``use_metadata``) its title
    and artist. Seeded by ``seed`` and the album id, so re-running gives the same texts."""

    def __init__(self, per_album: int = 2, max_genres: int = 4, max_tags: int = 4, use_metadata: bool = True,
                 tags_field: str = "tags", seed: int = 0):
        self.per_album = per_album
        self.max_genres = max_genres
        self.max_tags = max_tags
        self.use_metadata = use_metadata
        self.tags_field = tags_field
        self.seed = seed

    def _tags(self, record: AlbumRecord) -> list[str]:
        value = record.extra.get(self.tags_field)
        if isinstance(value, str):
            value = [value]
        return [str(tag) for tag in value] if isinstance(value, list) else []

    def describe(self, record: AlbumRecord) -> list[str]:
        rng = random.Random(f"{self.seed}:{record.id}")
        genres, tags = list(record.genres or []), self._tags(record)
        title = record.extra.get("title")
        texts = []
        for _ in range(self.per_album):
            parts = []
            if genres:
                chosen = rng.sample(genres, k=min(len(genres), rng.randint(1, self.max_genres)))
                parts.append(rng.choice(GENRE_TEMPLATES).format(genres=_join(chosen)))
            if tags:
                chosen = rng.sample(tags, k=min(len(tags), rng.randint(1, self.max_tags)))
                parts.append(rng.choice(TAG_TEMPLATES).format(tags=_join(chosen)))
            if self.use_metadata and record.artist and title:
                parts.append(rng.choice(META_TEMPLATES).format(title=title, artist=record.artist))
            if genres or tags:  # metadata alone says nothing about the music
                texts.append(" ".join(parts))
        return texts
