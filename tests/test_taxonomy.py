"""The genre taxonomy: files, inference, constrained scores, consistent records, metrics."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_tagger.checkpoint import load_checkpoint, save_checkpoint
from genre_tagger.cli import main
from genre_tagger.errors import UserInputError
from genre_tagger.metrics import compute_metrics, taxonomy_metrics
from genre_tagger.taxonomy import Taxonomy, infer_taxonomy, read_taxonomy
from genre_tagger.training import train

from conftest import TINY

LABELS = ["Rock", "Alternative Rock", "Indie Rock", "Jazz", "Bebop", "Pop"]
TREE = [("Alternative Rock", "Rock"), ("Indie Rock", "Alternative Rock"), ("Bebop", "Jazz")]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "taxonomy.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_with_comments_blank_lines_depth_and_several_parents(tmp_path):
    path = write(tmp_path, "# genres\n\nAlternative Rock\tRock\nIndie Rock\tAlternative Rock\n"
                           "Bebop\tJazz\n  # indented comment\nIndie Rock\tPop\n")
    taxonomy = read_taxonomy(path, LABELS)
    assert taxonomy.parents("Indie Rock") == ["Alternative Rock", "Pop"]
    assert taxonomy.ancestors("Indie Rock") == ["Alternative Rock", "Pop", "Rock"]
    assert [taxonomy.depth(name) for name in LABELS] == [0, 1, 2, 0, 1, 0]
    assert read_taxonomy(write(tmp_path, taxonomy.to_tsv()), LABELS).links == taxonomy.links


@pytest.mark.parametrize("text, line, words", [
    ("Alternative Rock\tRock\nIndie Rock Alternative Rock\n", 2, "expected 'child<TAB>parent'"),
    ("Alternative Rock\tRock\tJazz\n", 1, "expected 'child<TAB>parent'"),
    ("# c\nAlternative Rock\t\n", 2, "expected 'child<TAB>parent'"),
    ("Alternative Rock\tRock\nShoegaze\tAlternative Rock\n", 2, "unknown label 'Shoegaze'"),
    ("Alternative Rock\tRock\nRock\tIndie Rock\nIndie Rock\tAlternative Rock\n", 3, "cycle"),
    ("Rock\tRock\n", 1, "its own parent"),
])
def test_each_error_names_the_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(UserInputError) as err:
        read_taxonomy(path, LABELS)
    assert f"{path}:{line}:" in str(err.value) and words in str(err.value)


def test_auto_inference_recovers_a_planted_tree():
    rng = np.random.default_rng(0)
    labels = [f"g{i}" for i in range(12)]
    # g0..g2 top; g3..g8 children (two per top); g9..g11 grandchildren of g3, g5, g7
    parent = {3: 0, 4: 0, 5: 1, 6: 1, 7: 2, 8: 2, 9: 3, 10: 5, 11: 7}
    targets = np.zeros((600, 12), dtype=np.int64)
    for row in targets:
        for leaf in rng.choice(12, size=rng.integers(1, 3), replace=False):
            node = int(leaf)
            row[node] = 1
            while node in parent:
                node = parent[node]
                row[node] = 1
    taxonomy = infer_taxonomy(targets, labels)
    assert set(taxonomy.links) == {(labels[c], labels[p]) for c, p in parent.items()}


def test_scores_are_constrained_and_records_are_consistent():
    from genre_tagger.tagging.records import RecordBuilder

    taxonomy = Taxonomy(LABELS, TREE)
    scores = np.array([[0.2, 0.3, 0.9, 0.1, 0.6, 0.5]], dtype=np.float32)
    constrained = taxonomy.constrain(scores)
    assert constrained[0].tolist() == pytest.approx([0.9, 0.9, 0.9, 0.6, 0.6, 0.5])
    assert torch.equal(taxonomy.constrain(torch.from_numpy(scores)), torch.from_numpy(constrained))
    for child, parent in TREE:
        assert constrained[0, LABELS.index(parent)] >= constrained[0, LABELS.index(child)]
    # thresholds that would leave the parents out: the record adds them, parents first
    thresholds = np.array([0.95, 0.95, 0.5, 0.95, 0.55, 0.5])
    builder = RecordBuilder(LABELS, thresholds, ["text"], taxonomy=taxonomy)
    meta = {"id": "a", "declared": ["text"], "extra": {"primary": "kept"}}
    record = builder.album(meta, constrained[0], ["text"], [])
    assert record["genres"] == ["Rock", "Jazz", "Pop", "Alternative Rock", "Bebop", "Indie Rock"]
    assert record["primary"] == "Indie Rock" and record["manifest_primary"] == "kept"
    nothing = builder.album(meta, np.zeros(6), ["text"], [])
    assert nothing["genres"] == [] and nothing["primary"] is None
    plain = {"id": "a", "declared": ["text"], "extra": {}}
    assert "primary" not in RecordBuilder(LABELS, thresholds, ["text"]).album(plain, scores[0], ["text"], [])


def test_primary_ties_at_the_same_depth_go_to_the_higher_score():
    taxonomy = Taxonomy(LABELS, TREE)
    scores = np.array([0.9, 0.7, 0.1, 0.9, 0.8, 0.0])
    assert LABELS[taxonomy.primary([0, 1, 3, 4], scores)] == "Bebop"


def test_taxonomy_metrics_count_inconsistent_albums_levels_and_hierarchical_f1():
    taxonomy = Taxonomy(LABELS, TREE)
    targets = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0], [1, 0, 0, 0, 0, 1], [0, 0, 0, 1, 0, 1]])
    raw = np.array([[0.1, 0.2, 0.9, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.8, 0.7, 0.0],
                    [0.9, 0.0, 0.0, 0.0, 0.0, 0.9], [0.0, 0.0, 0.0, 0.2, 0.6, 0.6]])
    thresholds = np.full(6, 0.5)
    scores = taxonomy.constrain(raw)
    metrics = taxonomy_metrics(targets, scores, raw, thresholds, taxonomy)
    assert metrics["inconsistent_albums"] == 0.0
    assert metrics["inconsistent_albums_unconstrained"] == 0.5  # albums 0 and 3
    assert set(metrics["macro_roc_auc_by_level"]) == {"0", "1", "2"}
    assert 0.0 <= metrics["hierarchical_f1"] <= 1.0
    assert compute_metrics(targets, scores, thresholds, taxonomy)["micro_f1"] >= 0.0


@pytest.fixture(scope="module")
def auto_run(tiny_catalog, tmp_path_factory, one_torch_thread):
    run_dir = tmp_path_factory.mktemp("taxonomy") / "auto"
    metrics = train(tiny_catalog, run_dir, config_files=TINY, progress=False, taxonomy="auto")
    return run_dir, metrics


def test_train_auto_writes_the_inferred_tree_and_stores_it_in_the_checkpoint(auto_run, tmp_path):
    run_dir, metrics = auto_run
    bundle = load_checkpoint(run_dir / "model.ckpt")
    written = read_taxonomy(run_dir / "taxonomy.tsv", bundle.labels)
    assert bundle.taxonomy is not None and bundle.taxonomy.links == written.links
    for split in ("val", "test"):
        assert metrics[split]["inconsistent_albums"] == 0.0
        assert "inconsistent_albums_unconstrained" in metrics[split] and "hierarchical_f1" in metrics[split]
    assert json.loads((run_dir / "metrics.json").read_text())["val"]["inconsistent_albums"] == 0.0
    # a checkpoint written before taxonomies (no key) still loads, without one
    payload = torch.load(run_dir / "model.ckpt", weights_only=True)
    del payload["taxonomy"]
    torch.save(payload, tmp_path / "old.ckpt")
    old = load_checkpoint(tmp_path / "old.ckpt")
    assert old.taxonomy is None
    save_checkpoint(tmp_path / "again.ckpt", old)
    assert load_checkpoint(tmp_path / "again.ckpt").taxonomy is None


def test_the_prediction_path_gives_constrained_scores_to_every_job(auto_run, tiny_catalog):
    from genre_tagger.data.manifest import read_manifest
    from genre_tagger.prediction import unconstrained

    run_dir, _ = auto_run
    bundle = load_checkpoint(run_dir / "model.ckpt")
    records, _ = read_manifest(tiny_catalog)
    records = records[:12]
    scores, _, _ = bundle.predict(records, num_workers=0, device="cpu", progress=False)
    with unconstrained(bundle.model):
        raw, _, _ = bundle.predict(records, num_workers=0, device="cpu", progress=False)
    assert bundle.taxonomy is not None
    np.testing.assert_allclose(scores, bundle.taxonomy.constrain(raw), rtol=0, atol=1e-6)
    for child, parent in bundle.taxonomy.links:
        c, p = bundle.labels.index(child), bundle.labels.index(parent)
        assert (scores[:, p] >= scores[:, c]).all()


def test_tag_records_hold_ancestors_and_primary(auto_run, tiny_catalog, tmp_path):
    run_dir, _ = auto_run
    out = tmp_path / "tags.jsonl"
    assert main(["tag", "--checkpoint", str(run_dir / "model.ckpt"), "--manifest", str(tiny_catalog),
                 "--output", str(out), "--num-workers", "0", "--threshold", "0.3"]) == 0
    taxonomy = load_checkpoint(run_dir / "model.ckpt").taxonomy
    for line in out.read_text().splitlines():
        record = json.loads(line)
        assert "primary" in record
        if record["status"] != "ok":
            continue
        for genre in record["genres"]:
            for ancestor in taxonomy.ancestors(genre):
                assert ancestor in record["genres"]
                assert record["genres"].index(ancestor) < record["genres"].index(genre)
        assert (record["primary"] is None) == (not record["genres"])


@pytest.mark.parametrize("text", ["Rock\tNot A Genre\n", "oops\n"])
def test_train_with_a_bad_taxonomy_file_exits_2_naming_the_line(tiny_catalog, tmp_path, capsys, text):
    path = write(tmp_path, "# header\n" + text)
    code = main(["train", "--manifest", str(tiny_catalog), "--output", str(tmp_path / "run"),
                 "--config", *TINY, "--taxonomy", str(path)])
    assert code == 2
    assert f"{path}:2:" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.ckpt").exists()


def test_auto_inference_keeps_a_real_second_parent_and_drops_a_coincidental_popular_one():
    rng = np.random.default_rng(1)
    labels = ["Pop", "Rock", "Jazz", "Fusion", "Rare"]
    targets = np.zeros((400, 5), dtype=np.int64)
    targets[:, 0] = rng.random(400) < 0.6  # Pop: on most albums
    targets[:200, 1] = 1  # Rock
    targets[200:, 2] = 1  # Jazz
    targets[:40, 3] = 1  # Fusion: Rock and Jazz
    targets[:40, 2] = 1
    targets[300:304, 4] = 1  # Rare: 4 Jazz albums, which happen to be Pop too
    targets[300:304, 0] = 1
    links = set(infer_taxonomy(targets, labels).links)
    assert {("Fusion", "Rock"), ("Fusion", "Jazz"), ("Rare", "Jazz")} <= links
    assert ("Rare", "Pop") not in links
