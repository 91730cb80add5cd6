"""The third generator family: valid, deterministic, a consistent genre tree, a long tail,
realistic missing and broken inputs, artist-disjoint splits, and evidence a simple model learns."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from genre_tagger import cli
from genre_tagger.data.manifest import manifest_is_usable, validate_manifest
from genre_tagger.data.synthetic3 import write_catalog3
from genre_tagger.data.synthetic3.albums import MISSING, plan_albums
from genre_tagger.data.synthetic3.world import build_world
from genre_tagger.taxonomy import read_taxonomy

TINY = dict(n_labels=12, track_seconds=3.0, progress=False, broken_rate=0.1)


def _read(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_catalog3(tmp_path_factory.mktemp("synth3") / "cat", 40, seed=5, workers=0, **TINY)


def test_deterministic_whatever_the_workers(tiny, tmp_path):
    again = write_catalog3(tmp_path / "again", 40, seed=5, workers=2, **TINY)
    assert _files(tiny.parent) == _files(again.parent)
    other = write_catalog3(tmp_path / "other", 40, seed=6, workers=0, **TINY)
    assert other.read_text() != tiny.read_text()


def test_validates_and_deep_finds_exactly_the_broken_files(tiny):
    assert manifest_is_usable(validate_manifest(tiny))
    assert cli.main(["validate", str(tiny)]) == 0
    records = _read(tiny)
    named = {p for r in records for p in (r["audio"] or []) + [r["cover"]] + (r.get("text_files") or []) if p}
    broken = {issue.message.split("'")[1] for issue in validate_manifest(tiny, deep=True)}
    assert broken and broken < named  # a few, planned ones; every other file decodes
    assert all(issue.severity == "error" and "cannot decode" in issue.message
               for issue in validate_manifest(tiny, deep=True))
    assert {r["split"] for r in records} <= {"train", "val", "test"}
    assert any(r.get("text_files") for r in records) and any(r["texts"] for r in records)


def test_labels_follow_the_genre_tree(tiny):
    root = tiny.parent
    labels = (root / "labels.txt").read_text(encoding="utf-8").splitlines()
    taxonomy = read_taxonomy(root / "taxonomy.tsv", labels)
    assert taxonomy.links and len(labels) == 12
    for record in _read(tiny):
        genres = set(record["genres"])
        assert genres and genres <= set(labels)
        assert all(set(taxonomy.ancestors(g)) <= genres for g in genres)
    for child, parent in taxonomy.links:
        assert child.endswith(" " + parent)  # sub-genre names nest their parent's


def test_plans_long_tail_missing_rates_and_artist_splits():
    world = build_world(40, seed=0)
    plans = plan_albums(world, 3000, 0, MISSING, 0.05, 0.02)
    counts = np.array(sorted(Counter(g for p in plans for g in p.shown).values(), reverse=True))
    assert np.mean([len(p.shown) for p in plans]) >= 2.0  # several labels per album
    assert counts[: len(counts) // 5].sum() > 0.5 * counts.sum()  # a fifth of the labels: most occurrences
    assert counts[-1] < 0.01 * len(plans) and counts[0] > 0.2 * len(plans)  # a long tail
    for modality, rate in MISSING.items():
        assert abs(np.mean([not p.present[modality] for p in plans]) - rate) < 0.03
    assert all(any(p.present.values()) for p in plans)
    assert 0.005 < np.mean([bool(p.broken) for p in plans]) < 0.08
    split_of = {}
    for p in plans:
        assert split_of.setdefault(p.artist.id, p.artist.split) == p.artist.split
    shares = Counter(p.artist.split for p in plans)
    assert 0.6 < shares["train"] / len(plans) < 0.8 and shares["test"] > 0.08 * len(plans)
    assert len(split_of) > 800  # many artists, so that artist-free splits are possible
    silent = [m for g in world.genres for m in ("audio", "image", "text") if m not in g.modalities]
    assert len(silent) > 10 and all(g.modalities for g in world.genres)


def test_synth_command_offers_every_family(tmp_path, capsys):
    assert cli.main(["synth", "--generator", "sections", "--output", str(tmp_path / "s"), "--albums", "9",
                     "--labels", "6", "--workers", "0"]) == 0
    assert len(_read(tmp_path / "s" / "manifest.jsonl")) == 9
    assert (tmp_path / "s" / "taxonomy.tsv").is_file()
    assert cli.main(["synth", "--generator", "sections", "--output", str(tmp_path / "x"), "--listeners", "3"]) == 2


def _reference_auc(manifest: Path, shuffle: bool) -> float:
    from genre_tagger.baselines.bench import REFERENCE_LOADERS
    from genre_tagger.baselines.reference import run_reference
    from genre_tagger.data.dataset import build_loaders
    from genre_tagger.data.labelled import load_training_data

    data = load_training_data(manifest, None, 0)
    targets = data.targets.copy()
    if shuffle:  # albums keep their media, labels go to other albums
        targets = targets[np.random.default_rng(0).permutation(len(targets))]
    loaders = build_loaders(REFERENCE_LOADERS, ["audio", "image"])
    result = run_reference(data.records, targets, data.splits, loaders, ["audio", "image", "text"])
    return result.metrics["fused"]["macro_roc_auc"]


@pytest.mark.slow
def test_a_simple_model_learns_the_evidence_and_not_shuffled_labels(tmp_path):
    manifest = write_catalog3(tmp_path / "cat", 160, seed=2, n_labels=6, track_seconds=4.0, workers=0,
                              progress=False)
    assert _reference_auc(manifest, shuffle=False) > 0.75
    assert _reference_auc(manifest, shuffle=True) < 0.62
