"""`genre-tagger update`: new labels and albums into a trained model, refused when worse."""

import json
import random

import pytest
import torch

from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.cli import main
from genre_tagger.training import train
from genre_tagger.training.update import TOLERANCE

from conftest import TINY

NEW_LABEL = "Fresh Sound"


@pytest.fixture(scope="module")
def base_run(tiny_catalog, tmp_path_factory, one_torch_thread):
    run_dir = tmp_path_factory.mktemp("update") / "base"
    train(tiny_catalog, run_dir, config_files=TINY, progress=False, taxonomy="auto")
    return run_dir


@pytest.fixture(scope="module")
def updated_manifest(tiny_catalog):
    """The same catalog (same folder: relative paths hold) with a new label on some albums."""
    records = [json.loads(line) for line in tiny_catalog.read_text(encoding="utf-8").splitlines()]
    first = next(r["genres"][0] for r in records if r.get("genres"))
    for record in records:
        if record.get("genres") and first in record["genres"]:
            record["genres"] = [*record["genres"], NEW_LABEL]
    path = tiny_catalog.parent / "manifest_updated.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def update_args(base_run, manifest, out, *more):
    return ["update", "--checkpoint", str(base_run / "model.ckpt"), "--manifest", str(manifest),
            "--output", str(out), *more]


def test_update_adds_a_label_and_keeps_the_encoders(base_run, updated_manifest, tmp_path, capsys):
    out = tmp_path / "updated"
    assert main(update_args(base_run, updated_manifest, out)) == 0
    for name in ("model.ckpt", "config.yaml", "metrics.json", "labels.txt", "thresholds.csv", "update_report.md"):
        assert (out / name).is_file(), name
    old, new = load_checkpoint(base_run / "model.ckpt"), load_checkpoint(out / "model.ckpt")
    assert new.labels == [*old.labels, NEW_LABEL]
    assert new.thresholds.shape == (len(new.labels),)
    old_state, new_state = old.model.state_dict(), new.model.state_dict()
    encoder_keys = [k for k in old_state if k.startswith("encoders.")]
    assert encoder_keys and all(torch.equal(old_state[k], new_state[k]) for k in encoder_keys)
    assert new.taxonomy is not None and new.taxonomy.links == old.taxonomy.links
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["new_labels"] == [NEW_LABEL] and metrics["update"]["accepted"] is True
    report = (out / "update_report.md").read_text()
    assert f"{NEW_LABEL} (new)" in report and "old model" in report and f"tolerance {TOLERANCE:g}" in report
    for label in old.labels:
        assert f"| {label} |" in report
    fresh = metrics["update"]["new_label_reliability"]
    assert [r["label"] for r in fresh] == [NEW_LABEL] and fresh[0]["train_albums"] > 0 and fresh[0]["verdict"]
    assert "## New labels" in report and f"| {NEW_LABEL} | {fresh[0]['train_albums']} |" in report
    assert "wrote" in capsys.readouterr().out


def test_a_worse_model_is_refused_with_exit_2_and_force_writes_it(base_run, updated_manifest, tmp_path, capsys):
    # a tolerance of -1 asks the new model to beat the old one by 1.0 ROC-AUC: it cannot
    refused = tmp_path / "refused"
    assert main(update_args(base_run, updated_manifest, refused, "--tolerance", "-1")) == 2
    err = capsys.readouterr().err
    assert "worse on the old labels" in err and "tolerance of -1" in err and "--force" in err
    assert not (refused / "model.ckpt").exists()
    assert "model.ckpt not written" in (refused / "update_report.md").read_text()
    assert json.loads((refused / "metrics.json").read_text())["update"]["accepted"] is False

    forced = tmp_path / "forced"
    assert main(update_args(base_run, updated_manifest, forced, "--tolerance", "-1", "--force")) == 0
    assert (forced / "model.ckpt").is_file()
    assert "written anyway (--force)" in (forced / "update_report.md").read_text()
    assert json.loads((forced / "metrics.json").read_text())["update"]["forced"] is True


def test_update_of_a_missing_checkpoint_is_an_input_error(updated_manifest, tmp_path, capsys):
    code = main(["update", "--checkpoint", str(tmp_path / "none.ckpt"), "--manifest", str(updated_manifest),
                 "--output", str(tmp_path / "out")])
    assert code == 2 and "checkpoint not found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory, one_torch_thread):
    """A text-only model that learns (test_learning's catalog and config), its manifest, and the
    manifest with the training and validation albums' genre lists shuffled among them."""
    from test_learning import write_text_catalog

    folder = tmp_path_factory.mktemp("learned")
    manifest = write_text_catalog(folder / "catalog")
    config = folder / "learn.yaml"
    config.write_text("trainer: {max_epochs: 15, patience: 15}\nlogger: {wandb: {mode: disabled}, csv: false}\n"
                      "model: {encoders: {text: {init_args: {out_dim: 128}}}}\n")
    train(manifest, folder / "base", modalities="text", config_files=[*TINY, str(config)], progress=False)
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    movable = [r for r in records if r["split"] in ("train", "val")]
    lists = [r["genres"] for r in movable]
    random.Random(0).shuffle(lists)
    for record, genres in zip(movable, lists):
        record["genres"] = genres
    shuffled = manifest.parent / "manifest_shuffled.jsonl"
    shuffled.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return folder / "base", manifest, shuffled


def test_at_the_default_tolerance_a_refit_is_accepted_and_shuffled_labels_are_refused(learned_run, tmp_path, capsys):
    from genre_tagger.training.update import update

    base, manifest, shuffled = learned_run
    same = update(base / "model.ckpt", manifest, tmp_path / "same", progress=False, seed=1)["update"]
    assert same["accepted"] and (tmp_path / "same" / "model.ckpt").is_file()
    assert same["old_labels_old"] > 0.75 and same["tolerance"] == TOLERANCE
    assert main(update_args(base, shuffled, tmp_path / "shuffled")) == 2  # the CLI's default tolerance
    assert f"tolerance of {TOLERANCE:g}" in capsys.readouterr().err
    assert not (tmp_path / "shuffled" / "model.ckpt").exists()
    change = json.loads((tmp_path / "shuffled" / "metrics.json").read_text())["update"]
    assert change["old_labels_old"] - change["old_labels_new"] > 5 * TOLERANCE
    print(f"same data: {same['old_labels_old']:.3f} -> {same['old_labels_new']:.3f}; shuffled: "
          f"{change['old_labels_old']:.3f} -> {change['old_labels_new']:.3f}")


def test_a_new_labels_reliability_is_measured_with_an_interval():
    import numpy as np

    from genre_tagger.training.update import reliability

    rng = np.random.default_rng(0)
    targets = np.r_[np.ones(8), np.zeros(40)]
    clear = reliability("x", 5, targets, targets + rng.normal(0, 0.3, 48), "test")
    assert clear["roc_auc"] > 0.9 and clear["interval"][0] > 0.5 and clear["verdict"].startswith("better than")
    noise = reliability("x", 5, targets, rng.random(48), "test")
    assert noise["interval"][0] < 0.5 < noise["interval"][1]
    assert noise["verdict"].startswith("not distinguishable")
    unmeasured = reliability("x", 5, np.zeros(48), rng.random(48), "test")
    assert unmeasured["verdict"].startswith("not measurable") and unmeasured["roc_auc"] is None
