"""The genres of the second family: which modalities carry each genre, and how, and their tree.

Genres fall in clusters (genres of a cluster co-occur on an artist's albums); within each
cluster they form a tree of their own (``World.parent``): the cluster's first genre is a top
genre, every later one a child of an earlier one of its cluster (down to ``MAX_DEPTH``) or,
now and then, another top genre. An album that carries a genre carries its ancestors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AUDIO_KINDS = ("pulse", "band", "tremolo", "sections")
COVER_KINDS = ("stripes", "patch", "grid", "dots")
MAX_DEPTH = 2  # top genre -> genre -> sub-genre
NEW_TOP = 0.15  # chance that a genre after its cluster's first is another top genre
SYLLABLES = ("ka", "lo", "mi", "ru", "te", "sa", "vo", "ne", "pi", "da", "zu", "fe", "go", "ha", "ji", "wo",
             "ul", "ek", "ar", "os", "in", "ba", "qi", "xe")


@dataclass
class Genre:
    name: str
    modalities: tuple[str, ...]
    audio: dict = field(default_factory=dict)   # kind + parameters
    cover: dict = field(default_factory=dict)
    keywords: tuple[str, ...] = ()


@dataclass
class World:
    genres: list[Genre]
    filler: list[str]
    clusters: np.ndarray  # [G] cluster id: genres of a cluster co-occur
    parent: list[int | None] = field(default_factory=list)  # [G] each genre's parent (None: a top genre)

    def ancestors(self, genre: int) -> list[int]:
        """Parent, grandparent, ... (nearest first)."""
        out, above = [], self.parent[genre] if self.parent else None
        while above is not None:
            out.append(above)
            above = self.parent[above]
        return out

    def close(self, genres) -> list[int]:
        """``genres`` with every ancestor added, sorted."""
        return sorted({a for g in genres for a in (g, *self.ancestors(g))})

    def links(self) -> list[tuple[str, str]]:
        """The tree as ``(child, parent)`` genre names."""
        return [(self.genres[g].name, self.genres[p].name) for g, p in enumerate(self.parent) if p is not None]


def invented_word(rng: np.random.Generator, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables))


def _audio_evidence(rng: np.random.Generator) -> dict:
    kind = AUDIO_KINDS[rng.integers(len(AUDIO_KINDS))]
    return {"kind": kind, "rate": float(rng.uniform(1.2, 4.5)), "centre": float(np.exp(rng.uniform(np.log(250), np.log(5000)))),
            "mod": float(rng.uniform(4.0, 12.0)), "period": float(rng.uniform(0.4, 1.6))}


def _cover_evidence(rng: np.random.Generator) -> dict:
    kind = COVER_KINDS[rng.integers(len(COVER_KINDS))]
    return {"kind": kind, "angle": float(rng.uniform(0, np.pi)), "hue": float(rng.uniform(0, 1)),
            "pitch": int(rng.integers(5, 24)), "radius": int(rng.integers(2, 10))}


def build_world(n_genres: int, seed: int, modality_share: float = 0.6) -> World:
    """``n_genres`` genres; each modality carries a genre's evidence with ``modality_share`` (>= 1 does)."""
    rng = np.random.default_rng([seed, 77])
    genres, used = [], set()
    for index in range(n_genres):
        mods = [m for m in ("audio", "image", "text") if rng.random() < modality_share]
        if not mods:
            mods = [("audio", "image", "text")[rng.integers(3)]]
        words = []
        while len(words) < 3:
            word = invented_word(rng, int(rng.integers(3, 5)))
            if word not in used:
                used.add(word)
                words.append(word)
        genres.append(Genre(f"g2-{index:02d}-{words[0]}", tuple(mods), _audio_evidence(rng), _cover_evidence(rng),
                            tuple(words)))
    filler = []
    while len(filler) < 2500:
        word = invented_word(rng, int(rng.integers(1, 4)))
        if word not in used:
            used.add(word)
            filler.append(word)
    clusters = rng.integers(0, max(2, n_genres // 5), size=n_genres)
    return World(genres, filler, clusters, build_tree(clusters, seed))


def build_tree(clusters: np.ndarray, seed: int) -> list[int | None]:
    """Each genre's parent within its cluster (see the module docstring); its own random
    stream, so the genres' evidence and words are as without the tree."""
    rng = np.random.default_rng([seed, 78])
    parent: list[int | None] = [None] * len(clusters)
    depth = [0] * len(clusters)
    for cluster in np.unique(clusters):
        members = np.flatnonzero(clusters == cluster).tolist()
        for k, genre in enumerate(members[1:], start=1):
            above = [m for m in members[:k] if depth[m] < MAX_DEPTH]
            if rng.random() < NEW_TOP or not above:
                continue
            chosen = above[int(rng.integers(len(above)))]
            parent[genre], depth[genre] = chosen, depth[chosen] + 1
    return parent
