"""The config layer: class_path replacement on merge, references, recursive instantiate,
legacy configs, and every shipped overlay building and running the tiniest fit."""

from __future__ import annotations

import functools

import pytest
import torch

from genre_tagger.config import CONFIG_DIR, deep_merge, instantiate, load_config, resolve_references
from genre_tagger.errors import UserInputError
from genre_tagger.training.build import build_parts, build_strategy, upgrade_config
from genre_tagger.training.strategies import EndToEndTraining, StagedTraining

from conftest import TINY, only_modality


def test_merge_replaces_a_part_whose_class_path_changes_and_merges_one_that_keeps_it():
    base = {"fusion": {"class_path": "a.Mean", "init_args": {"width": 8, "p": 1}}, "seed": 0}
    same = deep_merge(base, {"fusion": {"class_path": "a.Mean", "init_args": {"p": 2}}})
    assert same["fusion"] == {"class_path": "a.Mean", "init_args": {"width": 8, "p": 2}}
    other = deep_merge(base, {"fusion": {"class_path": "a.Gated", "init_args": {"heads": 4}}})
    assert other["fusion"] == {"class_path": "a.Gated", "init_args": {"heads": 4}}  # no stale width/p
    only_args = deep_merge(base, {"fusion": {"init_args": {"width": 16}}})
    assert only_args["fusion"]["class_path"] == "a.Mean" and only_args["fusion"]["init_args"]["p"] == 1
    assert base["fusion"]["init_args"] == {"width": 8, "p": 1}  # inputs untouched


def test_a_shared_setting_is_written_once_and_follows_overlays(tmp_path):
    config = load_config(TINY)
    loader_mels = config["data"]["loaders"]["audio"]["init_args"]["n_mels"]
    assert config["model"]["encoders"]["audio"]["init_args"]["n_mels"] == loader_mels == 32
    text = config["data"]["loaders"]["text"]["init_args"]["tokenizer"]["init_args"]["vocab_size"]
    assert config["model"]["encoders"]["text"]["init_args"]["vocab_size"] == text
    overlay = tmp_path / "mels.yaml"
    overlay.write_text("data: {loaders: {audio: {init_args: {n_mels: 48}}}}\n")
    assert load_config([*TINY, str(overlay)])["model"]["encoders"]["audio"]["init_args"]["n_mels"] == 48
    with pytest.raises(UserInputError, match="names no setting"):
        resolve_references({"a": "${b.c}"})


def test_instantiate_builds_nested_parts_first_and_partials_for_run_time_arguments():
    loader = instantiate({"class_path": "genre_tagger.data.text.TextLoader", "init_args": {
        "tokenizer": {"class_path": "genre_tagger.data.text.HashingTokenizer", "init_args": {"vocab_size": 64}},
        "max_tokens": 32}})
    assert type(loader.tokenizer).__name__ == "HashingTokenizer" and loader.tokenizer.vocab_size == 64
    assert loader.spec()["init_args"]["tokenizer"]["init_args"]["vocab_size"] == 64  # plain data for checkpoints
    make = instantiate({"class_path": "torch.optim.SGD", "init_args": {"lr": 0.5}}, partial=True)
    assert isinstance(make, functools.partial)
    optimizer = make([torch.nn.Parameter(torch.zeros(1))], lr=0.25)
    assert optimizer.param_groups[0]["lr"] == 0.25


def test_legacy_training_mode_and_optim_still_work():
    legacy = {"training": {"mode": "end_to_end"}, "optim": {"lr": 0.01, "weight_decay": 0.0}}
    upgraded = upgrade_config(legacy)
    assert isinstance(build_strategy(upgraded), EndToEndTraining)
    assert upgraded["optimizer"] == {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.01, "weight_decay": 0.0}}
    assert isinstance(build_strategy(load_config()), StagedTraining)
    with pytest.raises(UserInputError, match="training.mode"):
        upgrade_config({"training": {"mode": "fancy"}})


def test_code_defaults_equal_the_plain_config():
    """The classic loader's and the tagger's code defaults are model/plain's settings (the
    reference's loader relies on them); the default config differs only where it says so."""
    from genre_tagger.data.audio import AudioLoader
    from genre_tagger.models.tagger import GenreTagger
    import inspect

    plain, default = load_config(["model/plain"]), load_config()
    loader_args = plain["data"]["loaders"]["audio"]["init_args"]
    defaults = {k: v.default for k, v in inspect.signature(AudioLoader).parameters.items()}
    assert all(defaults[k] == v for k, v in loader_args.items()), (defaults, loader_args)
    tagger_defaults = {k: v.default for k, v in inspect.signature(GenreTagger).parameters.items()}
    assert all(tagger_defaults[k] == v for k, v in plain["model"]["tagger"].items())
    assert {k for k, v in default["model"]["tagger"].items() if tagger_defaults[k] != v} == {"probes", "dropout"}
    assert default["data"]["loaders"]["audio"]["class_path"].endswith("MusicnnAudioLoader")


OVERLAYS = sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.glob("*/*.yaml"))
NEEDS_GPU = {"trainer/gpu", "trainer/ddp"}
NEEDS_MINILM = {"model/text_finetune"}


def test_every_shipped_overlay_is_listed():
    assert {"experiment/tiny", "experiment/end_to_end", "model/fusion_gated", "trainer/ddp"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o not in NEEDS_MINILM])
def test_every_shipped_overlay_builds_and_runs_a_fast_dev_run(overlay, tiny_catalog, tmp_path, one_torch_thread):
    from genre_tagger.training import train

    cpu = tmp_path / "cpu.yaml"
    # GPU overlays run here on the CPU: their other settings (batch size, workers, strategy) still apply.
    force_cpu = "accelerator: cpu, devices: 1, precision: 32-true, strategy: auto, " if overlay in NEEDS_GPU else ""
    cpu.write_text(f"trainer: {{{force_cpu}fast_dev_run: true}}\nencoder_pretraining: {{max_epochs: 1}}\n"
                   "data: {num_workers: 0}\nlogger: {wandb: {mode: disabled}}\n")
    image_only = overlay == "model/image_small"
    manifest = only_modality(tiny_catalog, "image", tiny_catalog.parent / "image_only_overlay.jsonl") \
        if image_only else tiny_catalog
    metrics = train(manifest, tmp_path / "run", modalities="image" if image_only else None,
                    config_files=[*TINY, overlay, str(cpu)], progress=False)
    assert (tmp_path / "run" / "model.ckpt").is_file()
    assert 0.0 <= metrics["val"]["macro_roc_auc"] <= 1.0 or metrics["val"]["macro_roc_auc"] != metrics["val"]["macro_roc_auc"]


@pytest.mark.slow
def test_text_finetune_overlay_runs_a_fast_dev_run(tiny_catalog, tmp_path, one_torch_thread):
    from genre_tagger.training import train

    fast = tmp_path / "fast.yaml"
    fast.write_text("trainer: {accelerator: cpu, devices: 1, fast_dev_run: true}\ndata: {num_workers: 0}\n"
                    "logger: {wandb: {mode: disabled}}\n")
    text_only = only_modality(tiny_catalog, "text", tiny_catalog.parent / "text_only_finetune.jsonl")
    metrics = train(text_only, tmp_path / "run", modalities="text", config_files=["model/text_finetune", str(fast)],
                    progress=False)
    assert metrics["encoder_pretraining"]["text"]["epochs"] >= 0


def test_parts_are_built_once_from_the_config(tmp_path):
    import numpy as np

    config = upgrade_config(load_config(TINY))
    parts = build_parts(config, np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32), tmp_path, progress=False)
    assert parts.loss.pos_weight.shape == (2,)
    assert parts.trainers.patience == config["trainer"]["patience"]
    assert parts.pretraining.max_epochs == config["encoder_pretraining"]["max_epochs"]
    optimizer = parts.optimizer([torch.nn.Parameter(torch.zeros(1))])
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["lr"] == 0.001


def test_trainer_arguments_and_callbacks_come_from_the_config():
    from pytorch_lightning.callbacks import EarlyStopping, Timer

    from genre_tagger.runs.trainers import BestWeights, TrainerFactory

    factory = TrainerFactory.from_config({
        "max_epochs": 3, "patience": 2, "accelerator": "cpu", "devices": 1, "gradient_clip_val": 0.5,
        "callbacks": [{"class_path": "pytorch_lightning.callbacks.Timer", "init_args": {"duration": "00:00:10:00"}}],
    }, progress=False)
    trainer = factory()
    assert trainer.max_epochs == 3 and trainer.gradient_clip_val == 0.5
    assert any(isinstance(c, Timer) for c in trainer.callbacks) and any(isinstance(c, BestWeights) for c in trainer.callbacks)
    assert next(c for c in trainer.callbacks if isinstance(c, EarlyStopping)).patience == 2
    assert factory(max_epochs=7, patience=5).max_epochs == 7
