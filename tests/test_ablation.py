"""`ablate` end to end on a tiny synthetic catalog with the tiny config (seconds on a CPU)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from genre_tagger.metrics import macro_roc_auc
from genre_tagger.training.ablation import AT_INFERENCE, TRAINED, modality_subsets, run_ablation
from genre_tagger.data.synthetic import write_catalog
from genre_tagger.errors import UserInputError
from genre_tagger.training.ablation.report import subset_gaps
from genre_tagger.training.ablation.runner import SubsetResult

METRICS = ("macro_roc_auc", "micro_roc_auc", "macro_pr_auc", "micro_f1", "macro_f1", "coverage_at_1")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalog")
    return write_catalog(folder, n_albums=48, seed=3, n_labels=20, track_seconds=1.0,
                         split_fractions=(0.6, 0.2, 0.2), progress=False, workers=0)


@pytest.fixture(scope="module")
def ablation(catalog, fast_config, tmp_path_factory):
    output = tmp_path_factory.mktemp("runs") / "ablation"
    report = run_ablation(catalog, output, config_files=fast_config, progress=False)
    return output, report


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_subsets_are_every_non_empty_combination_singles_first():
    assert modality_subsets(["text", "audio", "image"]) == [
        ("audio",), ("image",), ("text",), ("audio", "image"), ("audio", "text"), ("image", "text"),
        ("audio", "image", "text")]
    assert modality_subsets(["image"]) == [("image",)]


def test_ablate_writes_table_chart_per_label_and_json(ablation):
    output, report = ablation
    rows = read_csv(output / "ablation.csv")
    assert len(rows) == 14
    names = ["audio", "image", "text", "audio+image", "audio+text", "image+text", "audio+image+text"]
    assert [r["modalities"] for r in rows if r["setting"] == TRAINED] == names
    assert [r["modalities"] for r in rows if r["setting"] == AT_INFERENCE] == names
    for row in rows:
        assert row["split"] == "test"
        assert 0 < int(row["albums_with_input"]) <= int(row["albums"])
        for key in METRICS:
            assert 0.0 <= float(row[key]) <= 1.0, (row["setting"], row["modalities"], key, row[key])
    # The full model with every modality present is the trained full model: same numbers.
    full = [r for r in rows if r["modalities"] == "audio+image+text"]
    assert full[0]["macro_roc_auc"] == full[1]["macro_roc_auc"]
    assert (output / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (output / "ablation.md").read_text()
    assert "| audio+image+text (all) |" in markdown and "What each absence costs" in markdown
    per_label = read_csv(output / "per_label.csv")
    assert per_label and set(names) <= set(per_label[0])
    assert len(per_label) == report["labels"]
    stored = json.loads((output / "ablation.json").read_text())
    assert stored["split"] == "test" and len(stored["rows"]) == 14
    assert set(stored["findings"]["absence_costs"]) == {"audio", "image", "text"}
    gaps = stored["findings"]["subset_gaps"]
    assert list(gaps) == names[:-1]
    by_setting = {(r["setting"], r["modalities"]): float(r["macro_roc_auc"]) for r in rows}
    for name, gap in gaps.items():
        assert gap["gap"] == pytest.approx(by_setting[(AT_INFERENCE, name)] - by_setting[(TRAINED, name)], abs=1e-6)
        low, high = gap["gap_interval_90"]
        assert low <= high
    assert "Full model with only the subset vs trained on the subset" in markdown
    scores = np.load(output / "scores.npz")
    targets = scores["targets"]
    assert targets.shape == (int(rows[0]["albums"]), report["labels"])
    for row in rows:  # each stored row's scores give back its own macro ROC-AUC
        stored_scores = scores[f"{row['setting']}/{row['modalities']}"]
        assert macro_roc_auc(targets, stored_scores) == pytest.approx(float(row["macro_roc_auc"]), abs=1e-6)


def write_variant(catalog, name, **overrides):
    """A copy of the catalog's manifest (beside it, so paths still resolve) with fields overridden."""
    manifest = catalog.parent / name
    with open(catalog, encoding="utf-8") as source, open(manifest, "w", encoding="utf-8") as target:
        for line in source:
            target.write(json.dumps({**json.loads(line), **overrides}) + "\n")
    return manifest


def test_ablate_prints_progress_between_runs(catalog, fast_config, tmp_path, capsys):
    manifest = write_variant(catalog, "text_only.jsonl", audio=None, cover=None)
    run_ablation(manifest, tmp_path / "out", config_files=fast_config, progress=False)
    err = capsys.readouterr().err
    assert "[1/1] trained on text: macro ROC-AUC" in err
    assert "no album in the manifest has audio" in err and "no album in the manifest has image" in err


def test_ablate_without_audio_anywhere_runs_the_other_subsets(catalog, fast_config, tmp_path, capsys):
    manifest = write_variant(catalog, "no_audio.jsonl", audio=None)
    report = run_ablation(manifest, tmp_path / "out", config_files=fast_config, progress=False)
    err = capsys.readouterr().err
    assert "no album in the manifest has audio" in err
    rows = read_csv(tmp_path / "out" / "ablation.csv")
    assert [r["modalities"] for r in rows] == ["image", "text", "image+text"] * 2
    assert all(not math.isnan(float(r["macro_roc_auc"])) for r in rows)
    assert report["modalities_absent"] == {"audio": "no album in the manifest has audio"}
    assert "audio is absent" in (tmp_path / "out" / "ablation.md").read_text()
    assert "stage 1" not in err  # the audio CNN, the only encoder that trains, was never needed


def test_ablate_refuses_to_overwrite_an_earlier_ablation(ablation, catalog, fast_config):
    output, _ = ablation
    with pytest.raises(UserInputError, match="already exists"):
        run_ablation(catalog, output, config_files=fast_config, progress=False)


def test_ablate_logs_every_run_to_wandb_offline(catalog, fast_config, tmp_path):
    pytest.importorskip("wandb")
    output = tmp_path / "out"
    report = run_ablation(catalog, output, config_files=fast_config, wandb_mode="offline", progress=False)
    runs = sorted((output / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 + 7 + 1  # stage 1 (audio CNN), one per subset, the summary
    # the run holding the table (run folders are named by the second they start: the last
    # subset's and the summary's can share one)
    summary_run = next(run for run in runs if list(run.glob("files/media/table/ablation_*.table.json")))
    assert report["group"].encode() in next(summary_run.glob("*.wandb")).read_bytes()


def test_subset_gap_interval_tells_a_real_gap_from_noise():
    """A restricted model scoring the labels well against a trained head scoring noise: ahead,
    interval above 0; against itself: a zero gap."""
    rng = np.random.default_rng(0)
    targets = (rng.random((80, 6)) < 0.3).astype(float)
    good, noise = targets + rng.normal(0, 0.5, targets.shape), rng.random(targets.shape)
    subsets = [("audio",), ("text",), ("audio", "text")]

    def result(scores):
        return SubsetResult({"macro_roc_auc": macro_roc_auc(targets, scores)}, [], scores)

    results = {(AT_INFERENCE, ("audio",)): result(good), (TRAINED, ("audio",)): result(noise),
               (AT_INFERENCE, ("text",)): result(noise), (TRAINED, ("text",)): result(noise)}
    gaps = subset_gaps(results, subsets, targets)
    assert gaps["audio"]["gap"] > 0.2 and gaps["audio"]["gap_interval_90"][0] > 0
    assert gaps["text"]["gap"] == 0 and gaps["text"]["gap_interval_90"] == (0.0, 0.0)
    assert "audio+text" not in gaps
