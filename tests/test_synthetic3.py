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


def _cross_validated_auc(manifest: Path, shuffle: bool, modalities: tuple[str, ...], speaking: set[str]) -> float:
    """The simple-features reference's features of ``modalities``, logistic regression,
    trained and scored on each of 4 artist-disjoint folds: the mean ROC-AUC over folds and
    labels in ``speaking`` (a tiny test split alone would be too noisy)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    from genre_tagger.baselines.bench import REFERENCE_LOADERS
    from genre_tagger.baselines.features import album_texts, dense_features
    from genre_tagger.data.dataset import build_loaders
    from genre_tagger.data.labelled import load_training_data

    data = load_training_data(manifest, None, 0)
    targets = data.targets.astype(int)
    if shuffle:  # albums keep their media, their labels go to other albums
        targets = targets[np.random.default_rng(0).permutation(len(targets))]
    loaders = build_loaders(REFERENCE_LOADERS, [m for m in modalities if m != "text"])
    blocks = []
    for modality in loaders:
        matrix, present = dense_features(data.records, loaders[modality], 0, False)
        matrix = (matrix - matrix[present].mean(0)) / (matrix[present].std(0) + 1e-6)
        blocks.append(sparse.csr_matrix(0.3 * np.where(present[:, None], matrix, 0.0)))
    if "text" in modalities:
        # scaled so that one C suits both: dense z-scores want C ~0.1, unit-length tf-idf rows C ~10
        blocks.append(3.0 * TfidfVectorizer(sublinear_tf=True).fit_transform(album_texts(data.records)[0]))
    features = sparse.hstack(blocks).tocsr()
    aucs = []
    groups = [record.artist for record in data.records]
    for train, test in GroupKFold(4).split(features, targets, groups):
        for label, name in enumerate(data.vocabulary.names):
            learnable = 0 < targets[train, label].sum() < len(train) and 0 < targets[test, label].sum() < len(test)
            if name in speaking and learnable:
                model = LogisticRegression(C=1.0, max_iter=2000).fit(features[train], targets[train, label])
                aucs.append(roc_auc_score(targets[test, label], model.decision_function(features[test])))
    return float(np.mean(aucs))


def _learned(modalities: tuple[str, ...], folder: Path, seed: int, **settings) -> tuple[float, float]:
    """Cross-validated AUC with true and with shuffled labels, over the genres whose evidence
    speaks through ``modalities``."""
    manifest = write_catalog3(folder, seed=seed, workers=0, progress=False, **settings)
    speaking = {g.name for g in build_world(settings["n_labels"], seed).genres if set(g.modalities) & set(modalities)}
    return tuple(_cross_validated_auc(manifest, shuffle, modalities, speaking) for shuffle in (False, True))


def test_a_simple_model_learns_covers_and_texts_and_not_shuffled_labels(tmp_path):
    real, shuffled = _learned(("image", "text"), tmp_path, 3, n_albums=200, n_labels=12,
                              missing_rates={"audio": 1.0})  # no audio: fast
    assert real > 0.63 and shuffled < 0.56 and real - shuffled > 0.1


@pytest.mark.slow
def test_a_simple_model_learns_the_sections_audio_and_not_shuffled_labels(tmp_path):
    real, shuffled = _learned(("audio",), tmp_path, 3, n_albums=200, n_labels=12,
                              missing_rates={"audio": 0.0, "image": 1.0, "text": 1.0}, track_seconds=20.0)
    assert real > 0.65 and shuffled < 0.56 and real - shuffled > 0.1
