"""The third family's world: a genre tree with a long tail of popularity, and for each genre
the modalities that carry its evidence and what that evidence is.

Names nest: a sub-genre's name is a modifier and its parent's name ("Drift" -> "Cold Drift"
-> "Deep Cold Drift"), and an album labelled with a sub-genre carries every ancestor too, so
``taxonomy.tsv`` (child, parent) holds for every album. Popularity is Zipf-like over the
genres in a random order, so label frequencies (ancestors included) have a long tail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genre_tagger.data.synthetic3.words import MODIFIERS, ROOTS, THEMES

MODALITIES = ("audio", "image", "text")
SECTIONS = ("intro", "verse", "chorus", "bridge", "outro")
SECTION_WEIGHTS = (0.15, 0.3, 0.3, 0.1, 0.15)  # where a genre's audio evidence lives: mostly verses and choruses
AUDIO_KINDS = ("rhythm", "timbre", "drive")
COVER_KINDS = ("layout", "glyphs", "blocks", "rules")
MAX_DEPTH = 2  # roots are depth 0: three levels at most


@dataclass
class Genre:
    name: str
    parent: int | None
    depth: int
    popularity: float
    modalities: tuple[str, ...]         # where this genre's evidence shows
    audio: dict = field(default_factory=dict)   # kind, parameters, sections
    cover: dict = field(default_factory=dict)   # kind, parameters
    words: tuple[str, ...] = ()


@dataclass
class World:
    genres: list[Genre]

    @property
    def names(self) -> list[str]:
        return [g.name for g in self.genres]

    def ancestors(self, index: int) -> list[int]:
        chain, parent = [], self.genres[index].parent
        while parent is not None:
            chain.append(parent)
            parent = self.genres[parent].parent
        return chain

    def closed(self, labels) -> list[int]:
        """``labels`` with every ancestor added, sorted."""
        out = set(labels)
        for label in labels:
            out.update(self.ancestors(label))
        return sorted(out)

    def taxonomy_tsv(self) -> str:
        return "".join(f"{g.name}\t{self.genres[g.parent].name}\n" for g in self.genres if g.parent is not None)


def drum_pattern(rng: np.random.Generator, density: float) -> list[list[int]]:
    """Three rows (kick, snare, hat) of 16 steps; the kick always on the first step."""
    rows = (rng.random((3, 16)) < np.array([[density * 0.6], [density * 0.4], [density]])).astype(int)
    rows[0, 0] = 1
    return rows.tolist()


def audio_evidence(rng: np.random.Generator, artist: bool = False) -> dict:
    """One genre's sound, or with ``artist`` an artist's default arrangement: every kind's
    parameters; ``kind`` says which one is the genre's evidence. Artists play the middle of the
    ranges (a plain band), genres anywhere in them, so that a genre's part stands out."""
    wide = 0.35 if artist else 1.0
    mid = lambda lo, hi: float((lo + hi) / 2 + (hi - lo) / 2 * wide * rng.uniform(-1, 1))  # noqa: E731
    return {"kind": AUDIO_KINDS[rng.integers(len(AUDIO_KINDS))],
            "tempo": mid(70, 170), "pattern": drum_pattern(rng, mid(0.25, 0.7)),
            "decay": mid(0.6, 2.6), "formant": float(np.exp(mid(np.log(300), np.log(3500)))),
            "drive": mid(1.0, 9.0), "crackle": mid(0.0, 80.0),
            "sections": sorted(rng.choice(len(SECTIONS), size=int(rng.integers(2, 4)), replace=False,
                                          p=SECTION_WEIGHTS).tolist())}


def cover_evidence(rng: np.random.Generator) -> dict:
    return {"kind": COVER_KINDS[rng.integers(len(COVER_KINDS))],
            "place": int(rng.integers(5)), "lines": int(rng.integers(1, 5)),
            "glyph": int(rng.integers(4)), "weight": int(rng.integers(1, 9)),
            "hues": [float(rng.random()), float(rng.random())],
            "grid": [int(rng.integers(1, 5)), int(rng.integers(1, 5))],
            "rules": [int(rng.integers(2, 14)), int(rng.integers(1, 12))]}


def _tree(n_labels: int, rng: np.random.Generator) -> list[tuple[str, int | None, int]]:
    """``(name, parent, depth)`` for ``n_labels`` genres: about one root in seven, children
    under roots more often than under sub-genres."""
    n_roots = max(2, min(len(ROOTS), round(n_labels / 7)))
    roots = rng.choice(len(ROOTS), size=n_roots, replace=False)
    nodes: list[tuple[str, int | None, int]] = [(ROOTS[i], None, 0) for i in roots]
    taken = {name for name, _, _ in nodes}
    while len(nodes) < n_labels:
        open_ = [i for i, (_, _, depth) in enumerate(nodes) if depth < MAX_DEPTH]
        weights = np.array([3.0 if nodes[i][2] == 0 else 1.0 for i in open_])
        parent = open_[int(rng.choice(len(open_), p=weights / weights.sum()))]
        for modifier in rng.permutation(len(MODIFIERS)):
            name = f"{MODIFIERS[modifier]} {nodes[parent][0]}"
            if name not in taken and MODIFIERS[modifier] not in nodes[parent][0].split():
                break
        else:
            continue
        taken.add(name)
        nodes.append((name, parent, nodes[parent][2] + 1))
    return nodes


def build_world(n_labels: int, seed: int, modality_share: float = 0.6, zipf: float = 1.1,
                words_per_genre: int = 5) -> World:
    """``n_labels`` genres (>= 2); each modality carries a genre's evidence with ``modality_share``
    (at least one does); own popularity ``1 / rank^zipf`` over a random order of the genres."""
    if n_labels < 2:
        raise ValueError("the third family needs at least 2 labels")
    rng = np.random.default_rng([seed, 31])
    nodes = _tree(n_labels, rng)
    ranks = rng.permutation(len(nodes))
    genres = []
    for index, (name, parent, depth) in enumerate(nodes):
        mods = tuple(m for m in MODALITIES if rng.random() < modality_share) or (MODALITIES[rng.integers(3)],)
        words = tuple(str(w) for w in rng.choice(THEMES, size=words_per_genre, replace=False))
        genres.append(Genre(name, parent, depth, float(1.0 / (ranks[index] + 1) ** zipf), mods,
                            audio_evidence(rng), cover_evidence(rng), words))
    return World(genres)
