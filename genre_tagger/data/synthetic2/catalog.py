"""Planning and writing a catalog of the second family (``write_catalog2``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import soundfile as sf
from PIL import Image
from tqdm.auto import tqdm

from genre_tagger.data.synthetic2.render import SR, render_audio, render_cover, render_review
from genre_tagger.data.synthetic2 import sound
from genre_tagger.data.synthetic2.world import World, _audio_evidence, _cover_evidence, build_world, invented_word

MISSING = {"audio": 0.10, "image": 0.20, "text": 0.25}
# Evidence strength per modality (audio: component amplitude against noise 0.5; cover: motif
# opacity; text: mean keyword mentions per review). Calibrated so that simple features + LR
# score roughly 0.7-0.85 per modality on 600 albums (benchmarks/RESULTS.md, second generator).
STRENGTH = {"audio": 0.7, "image": 1.0, "text": 3.0}
# Reviews also name the artist's signature sound (sound.py): mean sentences per review, and
# how often the reviewer names the wrong level.
SOUND_SENTENCES, SOUND_ERROR = 1.2, 0.1


def artist_split(artist: str, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> str:
    """Artist-disjoint split by a hash of the artist's name (no artist in two splits)."""
    value = int(hashlib.sha1(artist.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "train" if value < fractions[0] else "val" if value < fractions[0] + fractions[1] else "test"


def _artist(index: int, world: World, rng: np.random.Generator) -> dict:
    first = int(rng.integers(len(world.genres)))
    same = np.flatnonzero(world.clusters == world.clusters[first])
    second = int(rng.choice(same)) if rng.random() < 0.7 else int(rng.integers(len(world.genres)))
    return {"name": f"{invented_word(rng, 2).capitalize()} {invented_word(rng, 3).capitalize()} {index}",
            "favourites": [first, second], "background": (float(rng.random()), float(rng.uniform(0.3, 0.9))),
            "pets": [invented_word(rng, 2) for _ in range(4)], "audio": _audio_evidence(rng),
            "cover": _cover_evidence(rng)}


def _labels(artist: dict, world: World, rng: np.random.Generator) -> list[int]:
    """The album's true genres, their ancestors included."""
    labels = {artist["favourites"][rng.integers(2)]}
    if rng.random() < 0.4:
        labels.update(artist["favourites"])
    if rng.random() < 0.3:
        labels.add(int(rng.choice(np.flatnonzero(world.clusters == world.clusters[min(labels)]))))
    if rng.random() < 0.1:
        labels.add(int(rng.integers(len(world.genres))))
    return world.close(labels)


def _shown(labels: list[int], world: World, noise: float, rng: np.random.Generator) -> list[int]:
    """The labels the manifest gives: each true one dropped, and a random one added, with chance
    ``noise``; then the ancestors of what is left (a sub-genre always comes with its parents)."""
    shown = [g for g in labels if rng.random() >= noise]
    if rng.random() < noise:
        shown.append(int(rng.integers(len(world.genres))))
    return world.close(shown or labels)


@dataclass
class AlbumPlan2:
    """One album before rendering: ``rng`` is its own stream, continued by the rendering."""

    album_id: str
    artist: dict
    labels: list[int]  # true genres (ancestors included): what the media show
    shown: list[int]  # the manifest's genres
    present: dict[str, bool]
    rng: np.random.Generator

    @property
    def split(self) -> str:
        return artist_split(self.artist["name"])


def plan_albums2(world: World, n_albums: int, seed: int, missing: Mapping[str, float],
                 label_noise: float) -> list[AlbumPlan2]:
    """Every album's artist, genres, split and modalities, without rendering anything."""
    rng = np.random.default_rng([seed, 2])
    artists = [_artist(i, world, rng) for i in range(max(1, n_albums // 3))]
    plans = []
    for index in range(n_albums):
        album_rng = np.random.default_rng([seed, 3, index])
        artist = artists[int(rng.integers(len(artists)))]
        labels = _labels(artist, world, album_rng)
        present = _present(album_rng, missing)
        shown = _shown(labels, world, label_noise, np.random.default_rng([seed, 4, index]))
        plans.append(AlbumPlan2(f"s2-{seed}-{index:05d}", artist, labels, shown, present, album_rng))
    return plans


def _evidence(world: World, labels: list[int], modality: str, strength: float, rng: np.random.Generator):
    """``(genre, strength)`` for the album's genres that speak through ``modality`` (20 % stay silent)."""
    return [(g, strength * rng.uniform(0.3, 1.0)) for g in labels
            if modality in world.genres[g].modalities and rng.random() > 0.2]


def _present(rng: np.random.Generator, missing: Mapping[str, float]) -> dict[str, bool]:
    present = {m: rng.random() >= missing[m] for m in ("audio", "image", "text")}
    if not any(present.values()):
        present[("audio", "image", "text")[rng.integers(3)]] = True
    return present


def _write_album(out: Path, album_id: str, artist: dict, labels: list[int], world: World, present: dict,
                 strength: Mapping[str, float], rng: np.random.Generator, track_seconds: float,
                 sound_rng: np.random.Generator, sound_mean: float) -> dict:
    record: dict = {"id": album_id, "artist": artist["name"], "split": artist_split(artist["name"]),
                    "audio": None, "cover": None, "texts": None}
    if present["audio"]:
        record["audio"] = []
        for track in range(int(rng.integers(1, 3))):
            parts = [(world.genres[g].audio, s) for g, s in _evidence(world, labels, "audio", strength["audio"], rng)]
            parts.append((artist["audio"], strength["audio"] * rng.uniform(0.3, 1.0)))  # the artist's signature
            path = f"audio/{album_id}_{track}.wav"
            sf.write(out / path, render_audio(parts, rng, track_seconds), SR, subtype="PCM_16")
            record["audio"].append(path)
    if present["image"]:
        parts = [(world.genres[g].cover, s) for g, s in _evidence(world, labels, "image", strength["image"], rng)]
        parts.append((artist["cover"], strength["image"] * rng.uniform(0.3, 1.0)))
        order = rng.permutation(len(parts))
        Image.fromarray(render_cover([parts[i] for i in order], artist["background"], rng)).save(
            out / f"covers/{album_id}.png")
        record["cover"] = f"covers/{album_id}.png"
    if present["text"]:
        record["texts"] = []
        for _ in range(int(rng.integers(1, 3))):
            keywords = [(world.genres[g].keywords, s) for g, s in _evidence(world, labels, "text", strength["text"], rng)]
            record["texts"].append(render_review(keywords, artist["pets"], world.filler, rng, int(rng.integers(40, 110))))
        # From a stream of their own, so that everything else is as without them.
        record["texts"] = [sound.add_sound_sentences(
            review, sound.sound_sentences(artist["audio"], sound_mean, SOUND_ERROR, sound_rng), sound_rng)
            for review in record["texts"]]
    return record


def write_catalog2(
    output_dir: str | Path, n_albums: int = 600, seed: int = 0, *, n_genres: int = 40,
    missing_rates: Mapping[str, float] | None = None, strength: Mapping[str, float] | None = None,
    label_noise: float = 0.05, track_seconds: float = 6.0, modality_share: float = 0.6, progress: bool = True,
    sound_sentences: float = SOUND_SENTENCES,
) -> Path:
    """Write ``manifest.jsonl`` (id, artist, split, genres, audio, cover, texts) + media; return its path.

    Deterministic by ``seed``. Genres form a tree (``World.parent``); an album's genres
    always include their ancestors. ``strength`` and ``missing_rates`` override per modality;
    ``modality_share``: chance that a modality carries a given genre's evidence;
    ``sound_sentences``: mean sentences per review naming the artist's signature sound (0: none).
    ~0.05 s per album on one core at the defaults.
    """
    out = Path(output_dir)
    for sub in ("audio", "covers"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    world = build_world(n_genres, seed, modality_share)
    missing = {**MISSING, **(missing_rates or {})}
    power = {**STRENGTH, **(strength or {})}
    records = []
    for index, plan in enumerate(tqdm(plan_albums2(world, n_albums, seed, missing, label_noise),
                                      desc="synth2 albums", disable=not progress)):
        record = _write_album(out, plan.album_id, plan.artist, plan.labels, world, plan.present, power, plan.rng,
                              track_seconds, np.random.default_rng([seed, 5, index]), sound_sentences)
        record["genres"] = sorted(world.genres[g].name for g in plan.shown)
        records.append(record)
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (out / "labels.txt").write_text("".join(g.name + "\n" for g in world.genres), encoding="utf-8")
    return manifest
