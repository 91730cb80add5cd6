"""The synthetic catalog: files decode, manifest is valid, determinism, splits, statistics."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from genre_tagger.data.synthetic import build_vocabulary, plan_catalog, write_catalog

TINY = dict(
    track_seconds=1.5, sample_rate=16000, tracks_per_album=(1, 2), texts_per_album=(1, 2),
    review_words=(20, 40), missing_rates={"audio": 0.2, "image": 0.2, "text": 0.3}, progress=False,
)


def _read(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "cat"
    manifest = write_catalog(out, 24, seed=3, workers=2, **TINY)
    return manifest


def test_layout_and_manifest_fields(tiny):
    root = tiny.parent
    assert tiny.name == "manifest.jsonl"
    labels = (root / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert len(labels) == 250 and len(set(labels)) == 250
    recs = _read(tiny)
    assert len(recs) == 24
    assert len({r["id"] for r in recs}) == 24
    for r in recs:
        assert isinstance(r["id"], str) and isinstance(r["artist"], str) and r["title"]
        assert r["split"] in ("train", "val", "test")
        assert r["genres"] and set(r["genres"]) <= set(labels)
        assert r["audio"] is None or (isinstance(r["audio"], list) and 1 <= len(r["audio"]) <= 2)
        assert r["cover"] is None or isinstance(r["cover"], str)
        assert r["texts"] is None or all(isinstance(t, str) and t for t in r["texts"])
        if "text_files" in r:
            assert r["texts"] is None and 1 <= len(r["text_files"]) <= 2
        paths = (r["audio"] or []) + ([r["cover"]] if r["cover"] else []) + r.get("text_files", [])
        assert all(not Path(p).is_absolute() for p in paths)
        assert r["audio"] or r["cover"] or r["texts"] or r.get("text_files")
    assert any(r["audio"] is None for r in recs)
    assert any(r["cover"] is None for r in recs)
    assert any("text_files" in r for r in recs) and any(r["texts"] for r in recs)
    assert len({Path(p).suffix for r in recs for p in r["audio"] or []}) >= 2


def test_media_decode(tiny):
    root = tiny.parent
    for r in _read(tiny):
        for p in r["audio"] or []:
            y, sr = sf.read(str(root / p), always_2d=True)
            assert sr == 16000 and y.shape[1] == 1
            assert 0.8 * 1.5 * sr <= y.shape[0] <= 1.2 * 1.5 * sr + 2000  # mp3 may pad
            # lossy codecs (mp3, vorbis) may overshoot full scale slightly on decode
            assert np.isfinite(y).all() and 0.001 < np.abs(y).max() <= 1.1
        if r["cover"]:
            with Image.open(root / r["cover"]) as im:
                im.load()
                assert im.mode == "RGB" and 128 <= im.size[0] <= 256
        for p in r.get("text_files", []):
            assert len((root / p).read_text(encoding="utf-8").split()) >= 15


def test_deterministic_by_seed(tiny, tmp_path):
    again = write_catalog(tmp_path / "again", 24, seed=3, workers=0, **TINY)  # in-process path
    assert again.read_bytes() == tiny.read_bytes()
    assert (again.parent / "labels.txt").read_bytes() == (tiny.parent / "labels.txt").read_bytes()
    for r in _read(tiny):
        for p in r["audio"] or []:
            a, _ = sf.read(str(tiny.parent / p))
            b, _ = sf.read(str(again.parent / p))
            np.testing.assert_array_equal(a, b)
            assert (tiny.parent / p).read_bytes() == (again.parent / p).read_bytes()
        if r["cover"]:
            assert (tiny.parent / r["cover"]).read_bytes() == (again.parent / r["cover"]).read_bytes()
    other = write_catalog(tmp_path / "other", 24, seed=4, workers=0, **TINY)
    assert other.read_bytes() != tiny.read_bytes()


def test_splits_artist_disjoint_and_hierarchy(tiny):
    vocab = build_vocabulary(250)
    recs = _read(tiny)
    splits_of = defaultdict(set)
    for r in recs:
        splits_of[r["artist"]].add(r["split"])
        for g in r["genres"]:
            assert set(vocab.ancestors(g)) <= set(r["genres"]), g
    assert all(len(s) == 1 for s in splits_of.values())
    assert {r["split"] for r in recs} == {"train", "val", "test"}


def test_plan_statistics():
    n = 3000
    plans = plan_catalog(n, seed=11)
    vocab = build_vocabulary(250)
    present = np.array([[p.present[m] for m in ("audio", "image", "text")] for p in plans])
    np.testing.assert_allclose(1 - present.mean(0), [0.10, 0.15, 0.25], atol=0.03)
    assert present.any(1).all()
    counts = Counter(g for p in plans for g in p.genres)
    mean_labels = np.mean([len(p.genres) for p in plans])
    assert 4.0 <= mean_labels <= 7.0
    top = max(counts.values()) / n
    assert 0.5 <= top <= 0.8
    assert min(counts.get(g, 0) for g in vocab.labels) <= 15   # a long tail
    assert sum(counts.get(g, 0) == 0 for g in vocab.labels) <= 3
    for p in plans:
        for g in p.genres + p.true_genres:
            assert set(vocab.ancestors(g)) <= set(p.genres if g in p.genres else p.true_genres)
    noisy = np.mean([p.genres != p.true_genres for p in plans])
    assert 0.1 < noisy < 0.6
    frac = Counter(p.split for p in plans)
    np.testing.assert_allclose([frac[s] / n for s in ("train", "val", "test")], [0.8, 0.1, 0.1], atol=0.02)
    artist_split = {}
    for p in plans:
        assert artist_split.setdefault(p.artist, p.split) == p.split
    per_artist = Counter(p.artist for p in plans)
    assert set(per_artist.values()) <= {1, 2, 3, 4} and len(per_artist) < n
    # co-occurrence beyond parent/child: some clustered pairs under different parents
    cross = Counter()
    for p in plans:
        tops = {vocab.top_of(g) for g in p.true_genres if vocab.parent[g]}
        cross[len(tops) >= 2] += 1
    assert cross[True] > 0.2 * n


def test_plan_deterministic_and_other_vocab_sizes():
    a = plan_catalog(60, seed=5)
    b = plan_catalog(60, seed=5)
    assert [(p.id, p.artist, p.genres, p.split) for p in a] == [(p.id, p.artist, p.genres, p.split) for p in b]
    np.testing.assert_array_equal(a[7].audio_z, b[7].audio_z)
    small = build_vocabulary(40)
    assert len(small) == 40 and all(small.parent[g] in small.labels for g in small.labels if small.parent[g])
    assert build_vocabulary(250).labels[:40] == small.labels
    big = build_vocabulary(320)
    assert len(set(big.labels)) == 320
    for p in plan_catalog(100, seed=1, n_labels=40):
        assert set(p.genres) <= set(small.labels)
        assert all(set(small.ancestors(g)) <= set(p.genres) for g in p.genres)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        plan_catalog(10, missing_rates={"video": 0.5})
    with pytest.raises(ValueError):
        write_catalog(tmp_path / "x", 4, audio_formats=("aiff",), progress=False)
    with pytest.raises(ValueError):
        plan_catalog(0)


def test_synth_workers_shut_down_quietly(tmp_path):
    """`synth --workers 2` runs under the CLI's SIGTERM-as-Ctrl-C handler; the pool's workers
    must not inherit it (Pool.terminate sends SIGTERM: each worker printed a traceback)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "genre_tagger.cli", "synth", "--output", str(tmp_path / "cat"), "--albums", "16",
         "--labels", "10", "--workers", "2", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr
