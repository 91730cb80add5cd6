import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.cli import main
from genre_tagger.training.evaluation import evaluate
from genre_tagger.metrics import METRIC_KEYS
from genre_tagger.training import train

from conftest import TINY, only_modality


@pytest.fixture(scope="module")
def tiny_run(tiny_catalog, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    metrics = train(tiny_catalog, run_dir, config_files=TINY, progress=False)
    return run_dir, metrics


def assert_metric_ranges(metrics):
    for key in METRIC_KEYS:
        assert key in metrics
    for key in ("macro_roc_auc", "micro_roc_auc", "macro_pr_auc", "micro_f1", "coverage_at_1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["n_albums"] > 0 and metrics["n_labels_evaluated"] > 0


def test_train_writes_a_complete_run_directory(tiny_run):
    run_dir, metrics = tiny_run
    for name in ("model.ckpt", "config.yaml", "metrics.json", "labels.txt", "thresholds.csv"):
        assert (run_dir / name).is_file(), name
    assert_metric_ranges(json.loads((run_dir / "metrics.json").read_text())["val"])
    assert metrics["modalities"] == ["audio", "image", "text"]
    assert set(metrics["presence_rates"]) == {"audio", "image", "text"}


def test_checkpoint_is_plain_data_and_self_contained(tiny_run):
    run_dir, _ = tiny_run
    payload = torch.load(run_dir / "model.ckpt", weights_only=True)  # no code runs on load
    bundle = load_checkpoint(run_dir / "model.ckpt")
    labels = (run_dir / "labels.txt").read_text().split("\n")[:-1]
    assert bundle.labels == labels == payload["labels"]
    assert bundle.thresholds.shape == (len(labels),)
    assert set(bundle.loaders) == {"audio", "image", "text"}
    assert bundle.loaders["audio"].settings() == payload["loaders"]["audio"]["init_args"]


def test_evaluate_writes_contract_metrics_and_per_label_table(tiny_run, tiny_catalog, tmp_path):
    run_dir, _ = tiny_run
    metrics = evaluate(run_dir / "model.ckpt", tiny_catalog, tmp_path / "eval", split=None, num_workers=0,
                       progress=False)
    assert_metric_ranges(json.loads((tmp_path / "eval" / "metrics.json").read_text()))
    assert metrics["n_albums"] == 48 - sum(1 for l in tiny_catalog.read_text().splitlines() if '"genres": null' in l)
    with open(tmp_path / "eval" / "per_label.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"label", "positives", "roc_auc", "pr_auc", "f1", "threshold"} <= set(rows[0])


def test_an_existing_run_directory_is_never_overwritten(tiny_run, tiny_catalog, capsys):
    run_dir, _ = tiny_run
    before = (run_dir / "model.ckpt").stat().st_mtime_ns
    code = main(["train", "--manifest", str(tiny_catalog), "--output", str(run_dir), "--config", TINY[0]])
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert (run_dir / "model.ckpt").stat().st_mtime_ns == before


@pytest.mark.parametrize("modality", ["text", "audio", "image"])
def test_single_modality_manifest_trains_and_evaluates(modality, tiny_catalog, tmp_path):
    manifest = only_modality(tiny_catalog, modality, tiny_catalog.parent / f"only_{modality}.jsonl")
    metrics = train(manifest, tmp_path / "run", modalities=modality, config_files=TINY, progress=False)
    assert metrics["modalities"] == [modality]
    result = evaluate(tmp_path / "run" / "model.ckpt", manifest, tmp_path / "eval", split=None, num_workers=0,
                      progress=False)
    assert result["presence_rates"].keys() == {modality}
    assert 0.0 <= result["macro_roc_auc"] <= 1.0


def test_asking_for_a_modality_no_album_has_is_a_clear_input_error(tiny_catalog, tmp_path, capsys):
    manifest = only_modality(tiny_catalog, "text", tiny_catalog.parent / "text_only_for_error.jsonl")
    code = main(["train", "--manifest", str(manifest), "--output", str(tmp_path / "r"), "--modalities", "audio",
                 "--config", TINY[0]])
    assert code == 2
    assert "no training album has any of: audio" in capsys.readouterr().err


def test_bad_modality_name_is_a_usage_error(tiny_catalog, tmp_path, capsys):
    code = main(["train", "--manifest", str(tiny_catalog), "--output", str(tmp_path / "r"), "--modalities", "video"])
    assert code == 2
    assert "--modalities" in capsys.readouterr().err


def test_wandb_offline_run_needs_no_network(tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    text_only = only_modality(tiny_catalog, "text", tiny_catalog.parent / "text_only_wandb.jsonl")
    train(text_only, tmp_path / "run", modalities="text", config_files=TINY, wandb_mode="auto", progress=False)
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*")), "an offline W&B run should be on disk"


def test_end_to_end_mode_trains_encoders_jointly(tiny_catalog, tmp_path):
    from genre_tagger.config import load_config

    config_file = tmp_path / "e2e.yaml"
    config_file.write_text("training: {mode: end_to_end}\ntrainer: {max_epochs: 2}\n")
    metrics = train(tiny_catalog, tmp_path / "run", config_files=[*TINY, str(config_file)], progress=False)
    assert metrics["training_mode"] == "end_to_end"
    assert metrics["encoder_pretraining"] == {}  # no separate stage 1
    bundle = load_checkpoint(tmp_path / "run" / "model.ckpt")
    assert not bundle.model.encoders["audio"].frozen
    assert 0.0 <= metrics["val"]["macro_roc_auc"] <= 1.0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_train_mid_fit_says_interrupted_and_exits_130(signum, tiny_catalog, tmp_path):
    """Lightning turns Ctrl-C into exit 1 and SIGTERM into exit 0; neither may pass for a
    crash or a finished run."""
    endless = tmp_path / "endless.yaml"
    endless.write_text("encoder_pretraining: {max_epochs: 100000, patience: 100000}\n")
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "genre_tagger.cli", "--quiet", "train", "--manifest", str(tiny_catalog),
            "--output", str(run_dir), "--wandb", "disabled", "--modalities", "audio",
            *[a for path in TINY for a in ("--config", path)], "--config", str(endless)]
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while "stage 1: training" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # inside trainer.fit by now (the tiny stage 1 has no preload left)
        process.send_signal(signum)
        code = process.wait(timeout=120)
    finally:
        process.kill()
    message = log.read_text()
    assert code == 130, message
    assert "genre-tagger train: interrupted" in message
    assert not (run_dir / "model.ckpt").exists()


def test_training_progress_goes_to_stderr_and_stdout_stays_for_results(tiny_catalog, tmp_path, capfd):
    text_only = only_modality(tiny_catalog, "text", tiny_catalog.parent / "text_only_progress.jsonl")
    train(text_only, tmp_path / "run", modalities="text", config_files=TINY, wandb_mode="disabled", progress=True)
    captured = capfd.readouterr()
    assert "Epoch" not in captured.out
    assert "Epoch" in captured.err


def test_a_checkpoint_tags_at_its_tagging_budget_and_trains_at_its_own(tmp_path):
    import numpy as np

    from genre_tagger.bundle import TaggerBundle
    from genre_tagger.checkpoint import save_checkpoint
    from genre_tagger.config import load_config
    from genre_tagger.data.dataset import build_loaders
    from genre_tagger.models.tagger import build_tagger
    from genre_tagger.testing import make_record

    config = load_config(TINY)
    config["data"]["loaders"]["text"]["init_args"]["tagging_max_chunks"] = 2
    model = build_tagger(config["model"], ["text"], 3).eval()
    loaders = build_loaders(config["data"]["loaders"], ["text"])
    save_checkpoint(tmp_path / "a.ckpt", TaggerBundle(model, loaders, ["x", "y", "z"], np.full(3, 0.5), config))
    tagging, training = load_checkpoint(tmp_path / "a.ckpt"), load_checkpoint(tmp_path / "a.ckpt", for_training=True)
    record = make_record(tmp_path, texts=[" ".join(f"w{i}" for i in range(400))])
    assert tagging.loaders["text"].load(record)[0]["input_ids"].shape[0] == 2
    assert training.loaders["text"].load(record)[0]["input_ids"].shape[0] == 4
    assert tagging.fingerprint("text") != training.fingerprint("text")  # never one cache entry for both
    save_checkpoint(tmp_path / "b.ckpt", tagging)  # a bundle loaded for tagging, written again
    stored = torch.load(tmp_path / "b.ckpt", weights_only=True)["loaders"]["text"]["init_args"]
    assert (stored["max_chunks"], stored["tagging_max_chunks"]) == (4, 2)
