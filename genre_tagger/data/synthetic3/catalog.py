"""Writing a catalog of the third family (``write_catalog3``): plan, render in parallel, manifest."""

from __future__ import annotations

import functools
import io
import multiprocessing as mp
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import soundfile as sf

from genre_tagger.data.manifest.writer import write_manifest
from genre_tagger.data.synthetic3.albums import BROKEN, MISSING, AlbumPlan, plan_albums
from genre_tagger.data.synthetic3.audio import SR, render_track
from genre_tagger.data.synthetic3.cover import render_cover
from genre_tagger.data.synthetic3.text import render_texts
from genre_tagger.data.synthetic3.world import World, build_world
from genre_tagger.interrupts import quiet_worker_signals

# Evidence strength per modality: audio, the chance that a bar of a genre's sections plays the
# genre's part; cover, the chance that the genre's element is drawn; text, mean theme words
# per text. Each album scales them by U(0.5, 1); SILENT: chance that a genre says nothing
# through one of its modalities on one album.
STRENGTH = {"audio": 1.0, "image": 1.0, "text": 2.5}
SILENT = 0.15


@dataclass(frozen=True)
class _Settings:
    out_dir: str
    seed: int
    n_labels: int
    modality_share: float
    track_seconds: float
    strength: tuple[tuple[str, float], ...]


@functools.lru_cache(maxsize=4)
def _world(n_labels: int, seed: int, modality_share: float) -> World:
    return build_world(n_labels, seed, modality_share)


def _evidence(world: World, plan: AlbumPlan, modality: str, strength: float, rng: np.random.Generator) -> list:
    """``(genre index, strength)`` for the album's true genres that speak through ``modality``."""
    return [(g, strength * rng.uniform(0.5, 1.0)) for g in plan.true
            if modality in world.genres[g].modalities and rng.random() >= SILENT]


def _write_audio(plan: AlbumPlan, world: World, s: _Settings, rng: np.random.Generator) -> list[str]:
    out, strength = Path(s.out_dir), dict(s.strength)["audio"]
    paths = []
    for k in range(plan.n_tracks):
        evidence = [(world.genres[g].audio, p) for g, p in _evidence(world, plan, "audio", strength, rng)]
        wave = render_track(plan.artist.audio, evidence, s.track_seconds, rng)
        fmt = "flac" if rng.random() < 0.3 else "wav"
        rel = f"audio/{plan.id}_{k + 1}.{fmt}"
        if f"audio:{k}" in plan.broken:  # a file that claims to be audio and is not
            (out / rel).write_bytes(b"RIFF" + rng.bytes(64) if fmt == "wav" else b"fLaC" + rng.bytes(64))
        else:
            sf.write(out / rel, wave, SR, format=fmt.upper(), subtype="PCM_16")
        paths.append(rel)
    return paths


def _write_cover(plan: AlbumPlan, world: World, s: _Settings, rng: np.random.Generator) -> str:
    evidence = [(world.genres[g].cover, p) for g, p in _evidence(world, plan, "image", dict(s.strength)["image"], rng)]
    image = render_cover(plan.artist.cover, plan.artist.hue, evidence, rng)
    fmt = "png" if rng.random() < 0.5 else "jpg"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if fmt == "png" else "JPEG", quality=88)
    data = buffer.getvalue()
    if "cover" in plan.broken:  # cut short, as an interrupted download leaves it
        data = data[: len(data) // 3]
    rel = f"covers/{plan.id}.{fmt}"
    (Path(s.out_dir) / rel).write_bytes(data)
    return rel


def _write_texts(plan: AlbumPlan, world: World, s: _Settings,
                 rng: np.random.Generator) -> tuple[list | None, list | None]:
    evidence = [(world.genres[g].words, world.genres[g].name, p)
                for g, p in _evidence(world, plan, "text", dict(s.strength)["text"], rng)]
    texts = render_texts(evidence, plan.n_texts, rng)
    if not plan.text_as_files:
        return texts, None
    rels = []
    for k, text in enumerate(texts):
        rel = f"texts/{plan.id}_{k + 1}.txt"
        data = text.encode("utf-8") + b"\n"
        if f"text:{k}" in plan.broken:  # not UTF-8
            data = data[:10] + b"\xc3\x28\xff" + data[10:]
        (Path(s.out_dir) / rel).write_bytes(data)
        rels.append(rel)
    return None, rels


def _render(plan: AlbumPlan, s: _Settings) -> dict:
    """One album's media, each modality from its own generator; its manifest record."""
    world = _world(s.n_labels, s.seed, s.modality_share)
    record = {"id": plan.id, "artist": plan.artist.id, "split": plan.artist.split,
              "genres": [world.genres[g].name for g in plan.shown], "audio": None, "cover": None, "texts": None}
    if plan.present["audio"]:
        record["audio"] = _write_audio(plan, world, s, np.random.default_rng([s.seed, 47, plan.index, 0]))
    if plan.present["image"]:
        record["cover"] = _write_cover(plan, world, s, np.random.default_rng([s.seed, 47, plan.index, 1]))
    if plan.present["text"]:
        texts, files = _write_texts(plan, world, s, np.random.default_rng([s.seed, 47, plan.index, 2]))
        record["texts"] = texts
        if files:
            record["text_files"] = files
    return record


def _render_job(job: tuple[AlbumPlan, _Settings]) -> dict:
    return _render(*job)


def _records(jobs: list, workers: int, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    bar = functools.partial(tqdm, total=len(jobs), desc="synth3 albums", unit="album", file=sys.stderr,
                            disable=not progress)
    if workers <= 1 or len(jobs) < 8:
        return [_render_job(job) for job in bar(jobs)]
    methods = mp.get_all_start_methods()
    context = mp.get_context("fork" if "fork" in methods and sys.platform.startswith("linux") else "spawn")
    with context.Pool(workers, initializer=quiet_worker_signals) as pool:
        return list(bar(pool.imap(_render_job, jobs, chunksize=max(1, min(8, len(jobs) // (workers * 8))))))


def write_catalog3(
    output_dir: str | os.PathLike, n_albums: int = 300, seed: int = 0, *, n_labels: int = 40,
    workers: int | None = None, progress: bool = True, track_seconds: float = 30.0,
    missing_rates: Mapping[str, float] | None = None, strength: Mapping[str, float] | None = None,
    label_noise: float = 0.05, broken_rate: float = BROKEN, modality_share: float = 0.6,
) -> Path:
    """Write a third-family catalog to ``output_dir``; return the path of its ``manifest.jsonl``.

    Also writes ``labels.txt`` (every genre, one a line) and ``taxonomy.tsv`` (``child<TAB>parent``,
    for ``train --taxonomy``). Manifest records: ``id, artist, split, genres, audio, cover,
    texts`` and ``text_files`` for albums whose texts are files (``texts`` null). Deterministic
    by ``seed``: the same arguments give byte-identical files whatever ``workers`` is
    (processes; default one per usable core, 0 = this process). ``missing_rates`` and
    ``strength`` override the defaults per modality (``audio``, ``image``, ``text``);
    ``broken_rate``: share of written files that are undecodable; ``modality_share``: chance
    that a modality carries a given genre's evidence.
    """
    if n_albums < 1 or track_seconds <= 0:
        raise ValueError("n_albums must be >= 1 and track_seconds > 0")
    world = _world(n_labels, seed, modality_share)
    plans = plan_albums(world, n_albums, seed, {**MISSING, **(missing_rates or {})}, label_noise, broken_rate)
    out = Path(output_dir)
    for sub in ("audio", "covers", "texts"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    settings = _Settings(str(out), seed, n_labels, modality_share, float(track_seconds),
                         tuple(sorted({**STRENGTH, **(strength or {})}.items())))
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    records = _records([(plan, settings) for plan in plans], workers, progress)
    (out / "labels.txt").write_text("".join(f"{name}\n" for name in world.names), encoding="utf-8")
    (out / "taxonomy.tsv").write_text(world.taxonomy_tsv(), encoding="utf-8")
    return write_manifest(records, out / "manifest.jsonl")
