"""Planning the third family's albums: artists, labels, presence, broken files, splits.

Everything here is drawn before any media is rendered, from generators seeded by
``(seed, artist)`` and ``(seed, album)``, so a plan does not depend on the order of rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from genre_tagger.data.synthetic3.world import MODALITIES, World, audio_evidence, cover_evidence

MISSING = {"audio": 0.10, "image": 0.20, "text": 0.25}
BROKEN = 0.02          # share of written files that are undecodable
TEXT_FILE_SHARE = 0.25  # albums with texts whose texts are files
SPLITS = (("train", 0.7), ("val", 0.15), ("test", 0.15))


@dataclass
class Artist:
    id: str
    split: str
    home: list[int]            # genres the artist mostly plays
    audio: dict                # default arrangement (tempo, pattern, timbre, drive)
    cover: dict                # default layout and glyphs
    hue: float                 # palette


@dataclass
class AlbumPlan:
    index: int
    id: str
    artist: Artist
    true: list[int]            # genres whose evidence the media carry (closed under ancestors)
    shown: list[int]           # the manifest's labels (annotation noise; closed under ancestors)
    present: dict[str, bool]
    n_tracks: int
    n_texts: int
    text_as_files: bool
    broken: set[str] = field(default_factory=set)  # "audio:k", "cover", "text:k"


def _popular(world: World, rng: np.random.Generator, size: int = 1) -> list[int]:
    weights = np.array([g.popularity for g in world.genres])
    return rng.choice(len(weights), size=size, p=weights / weights.sum()).tolist()


def make_artists(world: World, n_albums: int, seed: int) -> list[tuple[Artist, int]]:
    """Artists with their album counts (1 + geometric: many with one album, a few with many)."""
    artists, total = [], 0
    while total < n_albums:
        index = len(artists)
        rng = np.random.default_rng([seed, 41, index])
        draw = rng.random()
        split = next((name for name, share in _cumulative() if draw < share), "test")
        home = sorted(set(_popular(world, rng, int(rng.integers(1, 3)))))
        count = min(int(rng.geometric(0.4)), 8, n_albums - total)
        sound = audio_evidence(rng, artist=True)
        artists.append((Artist(f"a3-{seed}-{index:04d}", split, home, sound, cover_evidence(rng), float(rng.random())),
                        count))
        total += count
    return artists


def _cumulative():
    running = 0.0
    for name, share in SPLITS:
        running += share
        yield name, running


def _labels(world: World, artist: Artist, noise: float, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    focus = set()
    for _ in range(1 + min(3, int(rng.poisson(0.9)))):
        focus.add(int(rng.choice(artist.home)) if rng.random() < 0.55 else _popular(world, rng)[0])
    true = world.closed(focus)
    shown = set()
    for label in focus:  # an annotator who stops at the parent now and then
        parent = world.genres[label].parent
        shown.add(parent if parent is not None and rng.random() < noise else label)
    if rng.random() < noise:  # or adds a genre the album does not have
        shown.add(_popular(world, rng)[0])
    return true, world.closed(shown)


def _present(rng: np.random.Generator, missing: Mapping[str, float]) -> dict[str, bool]:
    present = {m: bool(rng.random() >= missing[m]) for m in MODALITIES}
    if not any(present.values()):
        present[MODALITIES[rng.integers(len(MODALITIES))]] = True
    return present


def plan_albums(world: World, n_albums: int, seed: int, missing: Mapping[str, float], noise: float,
                broken: float) -> list[AlbumPlan]:
    plans = []
    for artist, count in make_artists(world, n_albums, seed):
        for _ in range(count):
            index = len(plans)
            rng = np.random.default_rng([seed, 43, index])
            true, shown = _labels(world, artist, noise, rng)
            present = _present(rng, missing)
            n_tracks, n_texts = int(rng.integers(1, 3)), int(rng.integers(1, 4))
            as_files = bool(rng.random() < TEXT_FILE_SHARE)
            bad = {f"audio:{k}" for k in range(n_tracks) if rng.random() < broken}
            bad |= {"cover"} if rng.random() < broken else set()
            bad |= {f"text:{k}" for k in range(n_texts) if as_files and rng.random() < broken}
            plans.append(AlbumPlan(index, f"s3-{seed}-{index:05d}", artist, true, shown, present,
                                   n_tracks, n_texts, as_files, bad))
    return plans
