"""`genre-tagger update`: new labels and albums into a trained model, refused when worse."""

import json

import pytest
import torch

from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.cli import main
from genre_tagger.training import train

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
    assert f"{NEW_LABEL} (new)" in report and "old model" in report and "tolerance 0.02" in report
    for label in old.labels:
        assert f"| {label} |" in report
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
