"""Synthetic album catalogs: plan (labels, presence, splits, latent styles), render, manifest.

How a catalog is made
---------------------
1. Artists (1-4 albums each, ~42% with one) are drawn one by one from generators seeded by
   ``(seed, artist)``. An artist has a core top-level genre (Zipf-like popularity), a few
   secondary ones (affinities such as Metal->Rock, R&B->Rap & Hip-Hop; "Pop" as an
   umbrella label on most albums, as on MuMu), a taste over sub-genres (Gamma-perturbed
   Zipf weights, so an artist's albums share sub-genres), a style offset in the audio and
   cover latent spaces, and a few pet words.
2. Each album (generator seeded by ``(seed, album)``) keeps the artist's core genre and most
   of its secondary ones, draws Poisson-many sub-genres per genre by the artist's taste
   (recursing into sub-sub-genres), pulls in members of cross-parent clusters (e.g. Trip-Hop
   with Acid Jazz, Post-Punk with Gothic Metal) and is closed under ancestors: a sub-genre
   always implies its parent. These are the album's *true* genres; the manifest's
   ``genres`` add label noise: each label is dropped (with its descendants) at
   ``label_noise`` and Poisson(``label_noise`` x count) random labels (with ancestors) are added.
3. Evidence: every genre has a strength per modality and a direction in the audio / cover
   latent spaces and signature words (``style.py``). The album's latent style is the sum of
   its true genres' directions times strengths + the artist's offset + album noise;
   synthesiser and cover parameters are its sigmoid (each track adds its own noise).
   Reviews mix neutral template prose with descriptive words drawn from the genres by
   text strength, the artist's pet words and random words; now and then a genre is named;
   a few sentences say what the album itself sounds like (``sound_words.py``: its most
   noticeable synthesiser traits, from its own latent, so albums of one genre differ).
4. Modalities go missing independently at ``missing_rates`` (an album that lost all three
   keeps one at random); ~30% of albums with reviews get them as ``text_files``.
5. Splits are artist-disjoint: artists in a seeded random order go to whichever split is
   furthest below its target share of albums.
6. Rendering (the slow part) runs per album in a process pool, each album with its own
   generators ``(seed, album, modality)``, so the result does not depend on the order or
   the number of workers. The manifest is written by the parent process in album order.

How hard the catalog is for each modality is set by ``style.Calibration``;
``benchmarks/synth_proxy.py`` measures it with cheap proxy features.

Modules: ``planning`` draws steps 1-5 (``plan_catalog``, ``AlbumPlan``: no media); this
module renders the plans (step 6) and writes ``manifest.jsonl`` and ``labels.txt``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from genre_tagger.interrupts import quiet_worker_signals
from genre_tagger.data.synthetic.audio_synth import AUDIO_PARAMS, render_track, write_audio
from genre_tagger.data.synthetic.cover_synth import COVER_PARAMS, render_cover, save_cover
from genre_tagger.data.synthetic.planning import AlbumPlan, plan_catalog
from genre_tagger.data.synthetic.sound_words import add_sound_sentences
from genre_tagger.data.synthetic.style import World, build_world
from genre_tagger.data.synthetic.text_synth import render_reviews

__all__ = ["AlbumPlan", "album_reviews", "plan_catalog", "write_catalog", "write_manifest_jsonl"]


# ----------------------------------------------------------------------------- render
@dataclass(frozen=True)
class _RenderSettings:
    out_dir: str
    seed: int
    n_labels: int
    track_seconds: float
    sample_rate: int
    channels: int
    review_words: tuple[int, int]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def album_reviews(plan: AlbumPlan, seed: int, review_words: tuple[int, int], world: World) -> list[str] | None:
    """The album's reviews (None when its texts are missing): genre and artist words from one
    generator, then the sentences on its own sound from another, so that the rest of the
    catalog does not move with ``Calibration.text_sound_sentences``."""
    if not plan.n_texts:
        return None
    cal = world.calibration
    rng = np.random.default_rng([seed, 3, plan.index, 2])
    styles = [world.styles[g] for g in plan.text_genres]
    weights = np.array([st.strength["text"] for st in styles])
    texts = render_reviews(
        n_reviews=plan.n_texts, word_range=review_words,
        genre_words=[(list(st.adjectives), list(st.nouns)) for st in styles],
        genre_weights=weights, noise_weight=cal.text_noise_weight,
        genre_names=[world.vocab.labels[g] for g in plan.text_genres],
        name_weights=weights ** 2, artist=plan.artist,
        artist_words=(list(plan.artist_words[0]), list(plan.artist_words[1])),
        title=plan.title, all_labels=world.vocab.labels,
        descriptive_share=cal.text_descriptive_share, artist_share=cal.text_artist_share,
        name_rate=cal.text_name_rate, wrong_name_rate=cal.text_wrong_name_rate, rng=rng,
    )
    return add_sound_sentences(texts, plan.audio_z, cal.text_sound_sentences, cal.text_sound_error,
                               np.random.default_rng([seed, 3, plan.index, 3]))


def _render_album(plan: AlbumPlan, s: _RenderSettings) -> dict:
    """Write one album's media; return its manifest record (paths relative to out_dir)."""
    world = build_world(s.n_labels)
    cal = world.calibration
    out = Path(s.out_dir)
    rec: dict = {"id": plan.id, "artist": plan.artist, "title": plan.title, "split": plan.split,
                 "genres": list(plan.genres)}
    audio_paths = []
    if plan.audio_formats:
        rng = np.random.default_rng([s.seed, 3, plan.index, 0])
        for k, fmt in enumerate(plan.audio_formats):
            z = plan.audio_z + rng.normal(0, cal.audio_track, plan.audio_z.shape)
            params = dict(zip(AUDIO_PARAMS, _sigmoid(z).tolist()))
            y = render_track(params, s.sample_rate, s.track_seconds, s.channels, rng)
            rel = f"audio/{plan.id}_{k + 1}.{fmt}"
            write_audio(out / rel, y, s.sample_rate, fmt)
            audio_paths.append(rel)
    rec["audio"] = audio_paths or None
    if plan.cover_format is not None:
        rng = np.random.default_rng([s.seed, 3, plan.index, 1])
        params = dict(zip(COVER_PARAMS, _sigmoid(plan.cover_z).tolist()))
        img = render_cover(params, plan.cover_size, rng)
        rel = f"covers/{plan.id}.{plan.cover_format}"
        save_cover(img, out / rel, plan.cover_format, rng)
        rec["cover"] = rel
    else:
        rec["cover"] = None
    texts = album_reviews(plan, s.seed, s.review_words, world)
    if texts and plan.text_as_files:
        rels = []
        for k, text in enumerate(texts):
            rel = f"texts/{plan.id}_{k + 1}.txt"
            (out / rel).write_text(text + "\n", encoding="utf-8")
            rels.append(rel)
        rec["texts"] = None
        rec["text_files"] = rels
    else:
        rec["texts"] = texts
    return rec


def _render_star(args):
    return _render_album(*args)


def _pool_context():
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods and sys.platform.startswith("linux") else "spawn")


def _progress(iterable: Iterable, total: int, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc="synth albums", unit="album", file=sys.stderr)


def write_manifest_jsonl(records: Iterable[dict], path: Path) -> Path:
    """Write records as JSON Lines atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def write_catalog(
    output_dir: str | os.PathLike,
    n_albums: int = 300,
    seed: int = 0,
    *,
    n_labels: int = 250,
    missing_rates: Mapping[str, float] | None = None,
    track_seconds: float = 8.0,
    sample_rate: int = 22050,
    channels: int = 1,
    audio_formats: Sequence[str] = ("wav", "flac", "ogg", "mp3"),
    tracks_per_album: tuple[int, int] = (1, 4),
    texts_per_album: tuple[int, int] = (1, 3),
    review_words: tuple[int, int] = (40, 120),
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    label_noise: float = 0.05,
    progress: bool = True,
    workers: int | None = None,
    text_file_share: float = 0.3,
) -> Path:
    """Write a synthetic catalog to ``output_dir``; return the path of its ``manifest.jsonl``.

    Layout: ``manifest.jsonl``, ``labels.txt`` (the vocabulary, one label per line, in the
    vocabulary's fixed order), ``audio/<id>_<k>.<fmt>``, ``covers/<id>.<jpg|png>``,
    ``texts/<id>_<k>.txt``. Manifest records: ``id, artist, title, split, genres, audio,
    cover, texts`` and, for albums whose reviews are files, ``text_files`` (with ``texts``
    null); paths are relative to ``output_dir``; a missing modality is null.

    Deterministic by ``seed``: the same arguments give a byte-identical manifest and
    byte-identical media files, whatever ``workers`` is. ``workers``: processes (default: one per usable CPU core; 0 = this
    process). ``missing_rates`` overrides the defaults per modality ("audio", "image",
    "text"); an album with every modality drawn missing keeps one of them.
    ``text_file_share``: share of albums with reviews whose reviews are written as files.

    Speed (2 CPU cores, 2 workers): ~0.13 s per album at the defaults (8 s mono 22.05 kHz
    tracks); MuMu-like settings (4 x 30 s, 44.1 kHz stereo mp3) cost ~2.5 s per album,
    most of it MP3 encoding (Ogg: ~1.5 s).
    """
    bad = [f for f in audio_formats if f not in ("wav", "flac", "ogg", "mp3")]
    if bad:
        raise ValueError(f"unsupported audio formats {bad}; use wav, flac, ogg or mp3")
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    if track_seconds <= 0 or sample_rate < 8000:
        raise ValueError("track_seconds must be > 0 and sample_rate >= 8000")
    plans = plan_catalog(
        n_albums, seed, n_labels=n_labels, missing_rates=missing_rates, audio_formats=audio_formats,
        tracks_per_album=tracks_per_album, texts_per_album=texts_per_album,
        split_fractions=split_fractions, label_noise=label_noise, text_file_share=text_file_share,
    )
    out = Path(output_dir)
    for sub in ("audio", "covers", "texts"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    settings = _RenderSettings(
        out_dir=str(out), seed=seed, n_labels=n_labels, track_seconds=float(track_seconds),
        sample_rate=int(sample_rate), channels=int(channels),
        review_words=(int(review_words[0]), int(review_words[1])),
    )
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = [(p, settings) for p in plans]
    records: list[dict | None] = [None] * len(plans)
    if workers <= 1 or len(plans) < 8:
        for job in _progress(jobs, len(jobs), progress):
            rec = _render_star(job)
            records[job[0].index] = rec
    else:
        chunk = max(1, min(8, len(jobs) // (workers * 8)))
        with _pool_context().Pool(workers, initializer=quiet_worker_signals) as pool:
            it = pool.imap(_render_star, jobs, chunksize=chunk)
            for i, rec in enumerate(_progress(it, len(jobs), progress)):
                records[i] = rec
    vocab = build_world(n_labels).vocab
    (out / "labels.txt").write_text("".join(f"{x}\n" for x in vocab.labels), encoding="utf-8")
    return write_manifest_jsonl(records, out / "manifest.jsonl")
