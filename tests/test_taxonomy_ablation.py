"""`ablate` on a checkpoint with a genre tree: the taxonomy's metrics per subset."""

import csv

import numpy as np
import pytest

from genre_tagger.taxonomy import Taxonomy
from genre_tagger.training import train
from genre_tagger.training.ablation import run_ablation
from genre_tagger.training.ablation.report import TAXONOMY_COLUMNS, ablation_taxonomy, taxonomy_columns

from conftest import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_taxonomy_columns_raw_against_the_tree():
    taxonomy = Taxonomy(["Rock", "Indie Rock", "Jazz"], [("Indie Rock", "Rock")])
    targets = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1]])
    raw = np.array([[0.2, 0.9, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.3, 0.6, 0.2]])
    row = taxonomy_columns(targets, raw, np.full(3, 0.5), taxonomy)
    assert row["inconsistent_albums_raw"] == 0.5  # Indie Rock without Rock on albums 0 and 3
    assert row["inconsistent_albums_tree"] == 0.0
    assert set(TAXONOMY_COLUMNS) <= set(row) and {"macro_roc_auc_level_0", "macro_roc_auc_level_1"} <= set(row)
    assert row["macro_roc_auc_level_1"] == 1.0 and 0 <= row["hierarchical_f1"] <= 1


def test_a_checkpoint_without_a_tree_adds_nothing():
    assert ablation_taxonomy(None, ["a", "b"]) is None

    class Stored:
        taxonomy = Taxonomy(["a", "b", "c"], [("b", "a"), ("c", "a")])

    kept = ablation_taxonomy(Stored(), ["a", "b"])  # links to labels the ablation lacks are left out
    assert kept.links == [("b", "a")] and ablation_taxonomy(Stored(), ["c", "b"]) is None


def test_ablate_reports_the_trees_metrics_per_subset(tiny_catalog, fast_config, tmp_path):
    base = tmp_path / "base"
    train(tiny_catalog, base, config_files=TINY, progress=False, taxonomy="auto")
    report = run_ablation(tiny_catalog, tmp_path / "ablation", config_files=fast_config, progress=False,
                          encoders_from=base / "model.ckpt")
    with open(tmp_path / "ablation" / "ablation.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 14 and report["taxonomy_links"] > 0
    assert all(c in rows[0] for c in TAXONOMY_COLUMNS) and "macro_roc_auc_level_0" in rows[0]
    for row in rows:
        assert float(row["inconsistent_albums_tree"]) == 0.0
        assert 0 <= float(row["inconsistent_albums_raw"]) <= 1 and 0 <= float(row["hierarchical_f1"]) <= 1
    assert any(float(row["inconsistent_albums_raw"]) > 0 for row in rows)
    markdown = (tmp_path / "ablation" / "ablation.md").read_text()
    assert "With the genre tree" in markdown and "| trained | audio+image+text |" in markdown
