"""Planning a synthetic catalog: artists, labels, modality presence, splits and latent styles.

Steps 1, 2, 4 and 5 of ``catalog``'s description, and the album latents of step 3: all
draws, no media. ``plan_catalog`` is fast (~1 ms per album); ``catalog.write_catalog``
renders its plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from genre_tagger.data.synthetic.audio_synth import AUDIO_PARAMS
from genre_tagger.data.synthetic.cover_synth import COVER_PARAMS
from genre_tagger.data.synthetic.style import World, build_world
from genre_tagger.data.synthetic.text_synth import GENERAL_ADJ, GENERAL_NOUN, album_title, artist_name
from genre_tagger.data.synthetic.vocabulary import Vocabulary

DEFAULT_MISSING_RATES = {"audio": 0.10, "image": 0.15, "text": 0.25}
SPLIT_NAMES = ("train", "val", "test")
COVER_SIZES = (160, 192, 224, 256)

# label-structure knobs (tuned so the label statistics resemble MuMu's; see module doc)
ALBUMS_PER_ARTIST = ((1, 0.42), (2, 0.28), (3, 0.18), (4, 0.12))
CHILD_ZIPF = 1.0            # within-parent popularity of sub-genres: weight 1/(rank+1)^CHILD_ZIPF
ARTIST_TASTE = 0.6          # Gamma shape of an artist's sub-genre preferences (lower: pickier)
CHILDREN_CORE = 1.7         # Poisson mean of sub-genres under the album's core genre
CHILDREN_SECONDARY = 0.9    # ... under a secondary genre
CHILDREN_POP = 0.8          # ... under Pop when it is only the umbrella label
GRANDCHILDREN = 0.8         # ... under a sub-genre that has sub-genres itself
CLUSTER_RATE = 0.35         # chance a clustered label pulls in another member of its cluster
SECONDARY_NEW = 0.12        # per album: chance scale for a secondary genre the artist lacks
SECONDARY_KEEP = 0.8        # per album: chance to keep each of the artist's secondary genres


@dataclass
class AlbumPlan:
    """Everything about one album except its rendered media (cheap to make and pickle)."""

    index: int
    id: str
    artist: str
    artist_index: int
    title: str
    split: str | None
    genres: list[str]                 # annotated labels (with label noise), vocabulary order
    true_genres: list[str]            # the labels the media were generated from
    audio_formats: list[str]          # one per track; empty when audio is missing
    cover_format: str | None          # jpg / png; None when the cover is missing
    cover_size: int
    n_texts: int                      # 0 when texts are missing
    text_as_files: bool
    audio_z: np.ndarray               # [len(AUDIO_PARAMS)] album latent (logits)
    cover_z: np.ndarray               # [len(COVER_PARAMS)]
    text_genres: list[int] = field(default_factory=list)   # vocabulary indices of true labels
    artist_words: tuple[list[str], list[str]] = ((), ())

    @property
    def present(self) -> dict[str, bool]:
        return {"audio": bool(self.audio_formats), "image": self.cover_format is not None,
                "text": self.n_texts > 0}


@dataclass
class _Artist:
    index: int
    name: str
    n_albums: int
    core: str
    secondary: list[str]
    taste: dict[str, np.ndarray]       # label -> preference weights over its children
    audio: np.ndarray
    cover: np.ndarray
    words: tuple[list[str], list[str]]


# ----------------------------------------------------------------------------- labels
def _child_weights(vocab: Vocabulary, label: str) -> np.ndarray:
    kids = vocab.children[label]
    return 1.0 / (np.arange(len(kids)) + 1.0) ** CHILD_ZIPF


def _make_artist(index: int, seed: int, world: World, taken: set[str]) -> _Artist:
    rng = np.random.default_rng([seed, 0, index])
    vocab, cal = world.vocab, world.calibration
    sizes, probs = zip(*ALBUMS_PER_ARTIST)
    n_albums = int(rng.choice(sizes, p=np.array(probs) / sum(probs)))
    tops = list(vocab.top)
    w = np.array([vocab.core_weight[t] for t in tops])
    core = tops[int(rng.choice(len(tops), p=w / w.sum()))]
    secondary = [q for q, a in vocab.parent_affinity[core].items() if rng.random() < a]
    if core != "Pop" and "Pop" in vocab.parent and rng.random() < vocab.pop_affinity[core]:
        secondary.append("Pop")
    taste = {}
    for label in vocab.labels:
        if vocab.children[label]:
            taste[label] = _child_weights(vocab, label) * rng.gamma(ARTIST_TASTE, 1.0, len(vocab.children[label]))
    name = artist_name(rng)
    base, k = name, 2
    while name in taken:
        name = f"{base} {['II', 'III', 'IV', 'V', 'VI', 'VII', 'VIII', 'IX', 'X'][k - 2]}" if k < 11 else f"{base} {k}"
        k += 1
    taken.add(name)
    words = ([GENERAL_ADJ[i] for i in rng.choice(len(GENERAL_ADJ), 2, replace=False)],
             [GENERAL_NOUN[i] for i in rng.choice(len(GENERAL_NOUN), 3, replace=False)])
    return _Artist(index=index, name=name, n_albums=n_albums, core=core, secondary=secondary,
                   taste=taste, audio=rng.normal(0, cal.audio_artist, len(AUDIO_PARAMS)),
                   cover=rng.normal(0, cal.cover_artist, len(COVER_PARAMS)), words=words)


def taste_for(vocab: Vocabulary, label: str, artist: _Artist | None) -> np.ndarray:
    if artist is not None and label in artist.taste:
        return artist.taste[label]
    return _child_weights(vocab, label)


def _draw_children(vocab: Vocabulary, label: str, lam: float, artist: _Artist,
                   rng: np.random.Generator) -> list[str]:
    """Poisson(lam) sub-genres of ``label`` by the artist's taste, recursing one level down."""
    kids = vocab.children[label]
    k = min(len(kids), int(rng.poisson(lam))) if kids else 0
    if k == 0:
        return []
    taste = taste_for(vocab, label, artist)
    p = taste / taste.sum()
    k = min(k, int(np.count_nonzero(p)))
    picks = [kids[i] for i in rng.choice(len(kids), size=k, replace=False, p=p)]
    out = list(picks)
    for c in picks:
        if vocab.children[c]:
            out += _draw_children(vocab, c, GRANDCHILDREN, artist, rng)
    return out


def _sample_true_labels(vocab: Vocabulary, artist: _Artist, rng: np.random.Generator) -> set[str]:
    parents = [artist.core]
    for q in artist.secondary:
        if rng.random() < SECONDARY_KEEP:
            parents.append(q)
    for q, a in vocab.parent_affinity[artist.core].items():
        if q not in parents and rng.random() < SECONDARY_NEW * a / 0.3:
            parents.append(q)
    if "Pop" in vocab.parent and "Pop" not in parents and rng.random() < SECONDARY_NEW * vocab.pop_affinity[artist.core]:
        parents.append("Pop")
    labels = set(parents)
    for t in parents:
        lam = CHILDREN_CORE if t == artist.core else (CHILDREN_POP if t == "Pop" else CHILDREN_SECONDARY)
        labels.update(_draw_children(vocab, t, lam, artist, rng))
    # cross-parent clusters
    for cl in vocab.clusters:
        members = [c for c in cl if c in labels]
        if members and rng.random() < CLUSTER_RATE * len(members):
            others = [c for c in cl if c not in labels]
            if others:
                labels.add(others[int(rng.integers(len(others)))])
    return vocab.close(labels)


def _annotate(vocab: Vocabulary, true: set[str], noise: float, freq_labels: Sequence[str],
              freq_p: np.ndarray, rng: np.random.Generator) -> set[str]:
    """Label noise: drop each label (with its descendants) or add random ones (with ancestors)."""
    if noise <= 0:
        return set(true)
    out = set(true)
    for label in sorted(true, key=vocab.labels.index):
        if label in out and rng.random() < noise:
            drop = {label} | {c for c in out if label in vocab.ancestors(c)}
            if len(out - drop) >= 1:
                out -= drop
    n_add = int(rng.poisson(noise * max(1, len(true))))
    for _ in range(n_add):
        out |= vocab.close([freq_labels[int(rng.choice(len(freq_labels), p=freq_p))]])
    return out


def _assign_splits(artist_sizes: list[int], fractions: Sequence[float], seed: int) -> list[str | None]:
    """Artist-disjoint splits: artists in a seeded random order go to the most-behind split."""
    frac = np.asarray(fractions, dtype=float)
    if frac.shape != (3,) or (frac < 0).any() or frac.sum() <= 0:
        raise ValueError(f"split_fractions must be three non-negative numbers, got {fractions}")
    frac = frac / frac.sum()
    total = sum(artist_sizes)
    target = frac * total
    count = np.zeros(3)
    out: list[str | None] = [None] * len(artist_sizes)
    for a in np.random.default_rng([seed, 2]).permutation(len(artist_sizes)):
        deficit = np.where(frac > 0, target - count, -np.inf)
        s = int(np.argmax(deficit))
        out[a] = SPLIT_NAMES[s]
        count[s] += artist_sizes[a]
    return out


def plan_catalog(
    n_albums: int = 300,
    seed: int = 0,
    *,
    n_labels: int = 250,
    missing_rates: Mapping[str, float] | None = None,
    audio_formats: Sequence[str] = ("wav", "flac", "ogg", "mp3"),
    tracks_per_album: tuple[int, int] = (1, 4),
    texts_per_album: tuple[int, int] = (1, 3),
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    label_noise: float = 0.05,
    text_file_share: float = 0.3,
) -> list[AlbumPlan]:
    """Plan a catalog without rendering media: labels, presence, splits, latent styles.

    Fast (~1 ms per album): use it to check label statistics and missing rates. Deterministic
    by ``seed``; album ``i``'s draws use their own generator seeded by ``(seed, i)``.
    """
    if n_albums < 1:
        raise ValueError(f"n_albums must be >= 1, got {n_albums}")
    rates = dict(DEFAULT_MISSING_RATES)
    rates.update(missing_rates or {})
    unknown = set(rates) - set(DEFAULT_MISSING_RATES)
    if unknown:
        raise ValueError(f"unknown modalities in missing_rates: {sorted(unknown)}")
    if not audio_formats:
        raise ValueError("audio_formats must not be empty")
    world = build_world(n_labels)
    vocab, cal = world.vocab, world.calibration
    label_index = vocab.index()
    # label-noise additions follow a smoothed popularity (rank within parent)
    pop_w = np.array([1.0 / (1 + vocab.rank.get(x, 0)) / (1 + vocab.depth(x)) for x in vocab.labels])
    pop_w = pop_w / pop_w.sum()

    artists: list[_Artist] = []
    taken: set[str] = set()
    owner: list[int] = []
    while len(owner) < n_albums:
        artist = _make_artist(len(artists), seed, world, taken)
        artist.n_albums = min(artist.n_albums, n_albums - len(owner))
        artists.append(artist)
        owner += [artist.index] * artist.n_albums
    splits = _assign_splits([a.n_albums for a in artists], split_fractions, seed)

    width = max(5, len(str(n_albums - 1)))
    plans = []
    for i, a_idx in enumerate(owner):
        artist = artists[a_idx]
        rng = np.random.default_rng([seed, 1, i])
        true = _sample_true_labels(vocab, artist, rng)
        annotated = _annotate(vocab, true, label_noise, vocab.labels, pop_w, rng)
        present = {m: rng.random() >= rates[m] for m in ("audio", "image", "text")}
        if not any(present.values()):
            present[("audio", "image", "text")[int(rng.integers(3))]] = True
        n_tracks = int(rng.integers(tracks_per_album[0], tracks_per_album[1] + 1))
        fmt = str(audio_formats[int(rng.integers(len(audio_formats)))])
        cover_format = "jpg" if rng.random() < 0.7 else "png"
        cover_size = int(COVER_SIZES[int(rng.integers(len(COVER_SIZES)))])
        n_texts = int(rng.integers(texts_per_album[0], texts_per_album[1] + 1))
        as_files = bool(rng.random() < text_file_share)
        t_idx = sorted(label_index[g] for g in true)
        az = artist.audio + rng.normal(0, cal.audio_album, len(AUDIO_PARAMS))
        cz = artist.cover + rng.normal(0, cal.cover_album, len(COVER_PARAMS))
        for g in t_idx:
            st = world.styles[g]
            az = az + cal.audio_scale * st.strength["audio"] * st.audio
            cz = cz + cal.cover_scale * st.strength["image"] * st.cover
        plans.append(AlbumPlan(
            index=i, id=f"syn{seed}-{i:0{width}d}", artist=artist.name, artist_index=a_idx,
            title=album_title(rng), split=splits[a_idx],
            genres=[g for g in vocab.labels if g in annotated],
            true_genres=[vocab.labels[g] for g in t_idx],
            audio_formats=[fmt] * n_tracks if present["audio"] and n_tracks > 0 else [],
            cover_format=cover_format if present["image"] else None, cover_size=cover_size,
            n_texts=n_texts if present["text"] else 0, text_as_files=as_files,
            audio_z=az, cover_z=cz, text_genres=t_idx, artist_words=artist.words,
        ))
    return plans
