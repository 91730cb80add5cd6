"""Synthetic listeners for a synthetic catalog: ``events.jsonl`` for the recommender.

How a listener plays
--------------------
- Every album has an *appeal* (log-normal: a few albums are played far more than most,
  the skewed popularity a popularity baseline lives on), its genre *families* (the
  top-level genres of its true genres; the "Pop" umbrella only when nothing else) and its
  sub-genres.
- A listener has a long-term taste over families (Dirichlet, concentrated on one to three)
  and a short-term state: the families and sub-genres of what they just played, decayed
  at every play. The next family is drawn from a mix of both (tastes drift with what was
  just played); within it an album by appeal, boosted by the sub-genres it shares with the
  recent plays and, now and then, another album of the artist just played. A small share
  of plays explore the whole catalog by appeal. Nobody plays an album twice.
- New releases (``new_release_share`` of the albums) come out after everybody's earlier
  plays: only each listener's last ``late_events`` plays may pick them (at
  ``new_release_rate``), so under leave-last-out they are in no training event: the
  cold-start albums that only content can recommend.

Deterministic by seed. Calibration (``benchmarks/recommend.py``; 1,000 albums, 5,000
listeners, leave-last-out, hit rate@10): chance 0.010, popularity 0.046, a ranking by the
cosine of the true genres with the history's 0.108 (0.080 on cold-start targets), item-kNN
0.118: popularity clearly above random, genre content clearly above popularity, nothing
saturated. Re-measure whenever the settings below change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
RELEASE_DAY = 365.0   # new releases come out on this day; earlier plays all happen before it


@dataclass
class ListenerAlbum:
    """What a listener knows about an album: its id, true genres and artist."""

    id: str
    genres: Sequence[str]
    artist: str | None = None


@dataclass
class ListenerSettings:
    mean_history: float = 20.0       # median plays per listener (log-normal spread)
    history_spread: float = 0.6
    min_history: int = 5
    max_history: int = 120
    taste_concentration: float = 0.4  # Dirichlet scale over families (lower: pickier listeners)
    drift: float = 0.45              # weight of the recent-play state against long-term taste
    memory: float = 0.5              # how much of the recent state survives one play
    popularity_skew: float = 0.8     # sigma of the log-normal appeal
    subgenre_affinity: float = 12.0  # log-weight per unit of sub-genre match with niche + recent plays
    seed_albums: int = 3             # albums whose sub-genres make a listener's niche
    same_artist: float = 0.15        # chance to follow up with the same artist when possible
    explore: float = 0.05            # chance of a play drawn from the whole catalog by appeal
    new_release_share: float = 0.08
    new_release_rate: float = 0.2
    late_events: int = 2


class _World:
    """Album-side tables shared by every listener."""

    def __init__(self, albums: Sequence[ListenerAlbum], top_of: Callable[[str], str], settings: ListenerSettings,
                 rng: np.random.Generator):
        self.ids = [album.id for album in albums]
        families, subgenres = [], []
        for album in albums:
            tops = {top_of(g) for g in album.genres}
            if len(tops) > 1:
                tops.discard("Pop")
            families.append(sorted(tops) or ["(none)"])
            subgenres.append(sorted(g for g in album.genres if top_of(g) != g))
        self.family_names = sorted({f for fs in families for f in fs})
        family_index = {f: i for i, f in enumerate(self.family_names)}
        sub_names = sorted({s for ss in subgenres for s in ss})
        sub_index = {s: i for i, s in enumerate(sub_names)}
        n = len(albums)
        self.families = np.zeros((n, len(self.family_names)), dtype=np.float32)
        self.subgenres = np.zeros((n, max(1, len(sub_names))), dtype=np.float32)
        for i, (fs, ss) in enumerate(zip(families, subgenres)):
            self.families[i, [family_index[f] for f in fs]] = 1.0
            for s in ss:
                self.subgenres[i, sub_index[s]] = 1.0 / np.sqrt(len(ss))  # unit length: matches are cosines
        self.members = [np.flatnonzero(self.families[:, k]) for k in range(len(self.family_names))]
        self.family_share = self.families.sum(axis=0) / self.families.sum()
        self.appeal = np.exp(settings.popularity_skew * rng.standard_normal(n))
        n_new = int(round(settings.new_release_share * n)) if n > 10 else 0
        self.new = np.zeros(n, dtype=bool)
        self.new[rng.choice(n, size=n_new, replace=False)] = True
        artists = [album.artist for album in albums]
        by_artist: dict[str, list[int]] = {}
        for i, artist in enumerate(artists):
            if artist:
                by_artist.setdefault(artist, []).append(i)
        self.same_artist = [np.array([j for j in by_artist.get(a, []) if j != i], dtype=np.int64) if a else
                            np.zeros(0, dtype=np.int64) for i, a in enumerate(artists)]


def _pick(candidates: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> int | None:
    total = weights.sum()
    if len(candidates) == 0 or total <= 0:
        return None
    return int(candidates[rng.choice(len(candidates), p=weights / total)])


class _Listener:
    def __init__(self, world: _World, settings: ListenerSettings, rng: np.random.Generator):
        self.world, self.settings, self.rng = world, settings, rng
        alpha = settings.taste_concentration * len(world.family_names) * world.family_share + 1e-3
        self.taste = rng.dirichlet(alpha)
        self.recent_families = np.zeros_like(self.taste)
        # a niche inside the families: the sub-genres of a few albums the listener loves
        seeds = [rng.choice(world.members[f]) for f in rng.choice(len(self.taste), size=settings.seed_albums,
                                                                    p=self.taste)]
        self.niche = world.subgenres[seeds].sum(axis=0)
        self.recent_subgenres = np.zeros(world.subgenres.shape[1])
        self.played = np.zeros(len(world.ids), dtype=bool)
        self.last: int | None = None

    def _allowed(self, candidates: np.ndarray, late: bool, new_only: bool) -> np.ndarray:
        keep = ~self.played[candidates]
        keep &= self.world.new[candidates] if new_only else (late | ~self.world.new[candidates])
        return candidates[keep]

    def next_album(self, late: bool) -> int | None:
        world, settings, rng = self.world, self.settings, self.rng
        new_only = late and rng.random() < settings.new_release_rate
        if self.last is not None and not new_only and rng.random() < settings.same_artist:
            follow = self._allowed(world.same_artist[self.last], late, False)
            choice = _pick(follow, world.appeal[follow], rng)
            if choice is not None:
                return choice
        if rng.random() < settings.explore:
            pool = self._allowed(np.arange(len(world.ids)), late, new_only)
            return _pick(pool, world.appeal[pool], rng)
        mix = (1 - settings.drift) * self.taste + settings.drift * self.recent_families
        for family in rng.choice(len(mix), size=len(mix), replace=False, p=mix / mix.sum()):
            pool = self._allowed(world.members[family], late, new_only)
            profile = (1 - settings.drift) * self.niche + settings.drift * self.recent_subgenres
            match = world.subgenres[pool] @ (profile / max(float(np.linalg.norm(profile)), 1e-9))
            choice = _pick(pool, world.appeal[pool] * np.exp(settings.subgenre_affinity * match), rng)
            if choice is not None:
                return choice
        pool = self._allowed(np.arange(len(world.ids)), late, False)
        return _pick(pool, world.appeal[pool], rng)

    def play(self, album: int) -> None:
        memory = self.settings.memory
        families = self.world.families[album]
        self.recent_families = memory * self.recent_families + (1 - memory) * families / families.sum()
        if self.recent_families.sum() > 0:
            self.recent_families = self.recent_families / self.recent_families.sum()
        self.recent_subgenres = memory * self.recent_subgenres + (1 - memory) * self.world.subgenres[album]
        self.played[album] = True
        self.last = album


def _timestamps(n_early: int, n_late: int, rng: np.random.Generator) -> list[float]:
    """Days since EPOCH: the early plays end before RELEASE_DAY, the late ones after it."""
    gaps = rng.exponential(1.5, size=n_early)
    early = RELEASE_DAY - rng.exponential(3.0) - np.cumsum(gaps)[::-1]
    late = RELEASE_DAY + np.cumsum(rng.exponential(1.0, size=n_late))
    return [*early.tolist(), *late.tolist()]


def generate_events(
    albums: Sequence[ListenerAlbum],
    n_listeners: int,
    seed: int = 0,
    top_of: Callable[[str], str] | None = None,
    settings: ListenerSettings | None = None,
) -> Iterator[dict]:
    """Events ``{"user", "album", "timestamp"}`` (ISO 8601, UTC) of ``n_listeners`` listeners.

    ``top_of`` maps a genre to its family (default: the genre itself).
    """
    settings = settings or ListenerSettings()
    world = _World(albums, top_of or (lambda genre: genre), settings, np.random.default_rng([seed, 7]))
    width = len(str(max(1, n_listeners - 1)))
    for u in range(n_listeners):
        rng = np.random.default_rng([seed, 8, u])
        listener = _Listener(world, settings, rng)
        length = int(np.clip(round(np.exp(np.log(settings.mean_history) + settings.history_spread
                                          * rng.standard_normal())), settings.min_history, settings.max_history))
        n_late = min(settings.late_events, length)
        days = _timestamps(length - n_late, n_late, rng)
        for step in range(length):
            album = listener.next_album(late=step >= length - n_late)
            if album is None:
                break
            listener.play(album)
            when = EPOCH + timedelta(days=days[step])
            yield {"user": f"u{u:0{width}d}", "album": world.ids[album],
                   "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ")}


def new_release_ids(albums: Sequence[ListenerAlbum], seed: int = 0, settings: ListenerSettings | None = None) -> set[str]:
    """The albums ``generate_events`` treats as new releases (same seed and settings)."""
    settings = settings or ListenerSettings()
    world = _World(albums, lambda genre: genre, settings, np.random.default_rng([seed, 7]))
    return {album_id for album_id, new in zip(world.ids, world.new) if new}


def write_listeners(output_dir: str | Path, n_albums: int, n_listeners: int, seed: int = 0, n_labels: int = 250,
                    settings: ListenerSettings | None = None, listener_seed: int | None = None) -> Path:
    """``output_dir/events.jsonl`` for the catalog ``write_catalog(..., n_albums, seed, n_labels=...)``
    writes (its plans are recomputed: same seed, same albums; the catalog folder itself is not
    read, so ``output_dir`` may be another one). ``listener_seed`` (default ``seed``) draws
    another population of listeners for the same catalog."""
    from genre_tagger.data.events import write_events
    from genre_tagger.data.synthetic.catalog import plan_catalog
    from genre_tagger.data.synthetic.vocabulary import build_vocabulary

    vocab = build_vocabulary(n_labels)
    albums = [ListenerAlbum(plan.id, plan.true_genres, plan.artist)
              for plan in plan_catalog(n_albums, seed, n_labels=n_labels)]
    listener_seed = seed if listener_seed is None else listener_seed
    return write_events(generate_events(albums, n_listeners, listener_seed, vocab.top_of, settings),
                        Path(output_dir) / "events.jsonl")
