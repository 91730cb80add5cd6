"""The config layer: class_path replacement on merge, references, recursive instantiate and
its errors, unknown keys refused, legacy overlays upgraded, code defaults equal to the
shipped YAML, and every shipped overlay built and run on one tiny batch (tagger overlays
through the tagger's builders, recommender overlays through the recommender's)."""

from __future__ import annotations

import dataclasses
import functools
import inspect

import numpy as np
import pytest
import torch

from genre_tagger.config import CONFIG_DIR, deep_merge, instantiate, load_config, read_yaml, resolve_references
from genre_tagger.errors import UserInputError
from genre_tagger.upgrade import upgrade_config

from conftest import TINY

try:  # the recommender's config loader (its module is being split; either place works)
    from genre_tagger.recommend.fitting import load_recommend_config
except ImportError:  # pragma: no cover
    from genre_tagger.recommend.training import load_recommend_config


def overlay_file(tmp_path, text: str, name: str = "overlay.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- merging, references, instantiate ------------------------------------------------------

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
    mels = overlay_file(tmp_path, "data: {loaders: {audio: {init_args: {n_mels: 48}}}}\n")
    assert load_config([*TINY, mels])["model"]["encoders"]["audio"]["init_args"]["n_mels"] == 48
    with pytest.raises(UserInputError, match="names no setting"):
        resolve_references({"a": "${b.c}"})
    with pytest.raises(UserInputError, match="refers to itself"):
        resolve_references({"a": "${a}"})


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


@pytest.mark.parametrize("spec, partial, message", [
    ({"class_path": "genre_tagger.models.fusion.GatedFusion", "init_args": {"widht": 8, "n_modalities": 2}}, False,
     r"GatedFusion: .*'widht'"),
    ({"class_path": "genre_tagger.models.fusion.GatedFusion", "init_args": {"n_modalities": 2}}, False,
     r"GatedFusion: missing a required argument: 'width'"),
    ({"class_path": "torch.optim.AdamW", "init_args": {"weight_decya": 0.1}}, True,
     r"torch.optim.AdamW: .*'weight_decya'"),                                  # caught before training, too
    ({"class_path": "genre_tagger.data.text.TextLoader", "init_args": {
        "tokenizer": {"class_path": "genre_tagger.data.text.HashingTokenizer", "init_args": {"vocab": 64}}}}, False,
     r"HashingTokenizer: .*'vocab'"),                                          # the nested part named
    ({"class_path": "genre_tagger.models.fusion.GatedFusion", "init_arg": {"width": 8}}, False,
     r"unknown key 'init_arg'"),                                               # not silently argument-less
    ({"class_path": "genre_tagger.models.fusion.NoSuchFusion"}, False, r"cannot import"),
    ({"class_path": "GatedFusion"}, False, r"package.module.Name"),
])
def test_instantiate_names_the_class_path_and_the_argument(spec, partial, message):
    with pytest.raises(UserInputError, match=message):
        instantiate(spec, partial=partial)


# --- unknown keys ------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("model: {tagger: {widht: 64}}\n", r"unknown key model\.tagger\.widht \(known: width, head_hidden, .*did you mean width"),
    ("encoder_pretraining: {max_epoch: 1}\n", r"unknown key encoder_pretraining\.max_epoch"),
    ("calibration: {min_positive: 2}\n", r"unknown key calibration\.min_positive"),
    ("optimiser: {class_path: torch.optim.SGD}\n", r"unknown key optimiser"),
    ("model: {fusion: {init_arg: {heads: 2}}}\n", r"unknown key model\.fusion\.init_arg \(known: class_path, init_args\)"),
    ("model: {fusion: {heads: 2}}\n", r"unknown key model\.fusion\.heads"),       # a part's args go in init_args
    ("trainer: {max_epoch: 3}\n", r"unknown key trainer\.max_epoch .*pytorch_lightning.Trainer.*max_epochs"),
    ("search: {fit: {methd: cca}}\n", r"unknown key search\.fit\.methd"),        # against configs/search/joint.yaml
    ("data: {loaders: {chords: {vocab: 64}}}\n", r"unknown key data\.loaders\.chords"),  # a new part needs class_path
    ("logger: {wandb: {mode: disabled}, tensorboard: true}\n", r"unknown key logger\.tensorboard"),
])
def test_an_unknown_key_in_a_tagger_overlay_is_an_error_naming_the_file_and_the_key(tmp_path, text, message):
    path = overlay_file(tmp_path, text)
    with pytest.raises(UserInputError, match=message) as caught:
        load_config([*TINY, path])
    assert str(caught.value).startswith(f"{path}: ")


def test_free_form_sections_and_new_parts_are_accepted(tmp_path):
    """Lightning's Trainer arguments, wandb.init's settings, hook names, a new modality's
    part, a new class_path with its own init_args (checked when built): all load."""
    path = overlay_file(tmp_path, (
        "trainer: {gradient_clip_val: 0.5, limit_train_batches: 2}\n"
        "logger: {wandb: {entity: my-team, notes: a run}}\n"
        "after_training: {mine: my_package.hooks.train_more}\n"
        "data: {loaders: {chords: {class_path: toy.ChordLoader, init_args: {vocab: 64}}}}\n"
        "model: {fusion: {class_path: genre_tagger.models.fusion.AttentionFusion, init_args: {heads: 2}}}\n"))
    config = load_config([*TINY, path])
    assert config["trainer"]["gradient_clip_val"] == 0.5 and config["logger"]["wandb"]["entity"] == "my-team"
    assert config["after_training"]["mine"] == "my_package.hooks.train_more"
    assert config["model"]["fusion"]["init_args"] == {"heads": 2}


def test_a_recommender_overlay_given_to_the_tagger_is_refused_and_the_other_way_round(tmp_path):
    """Both jobs share ``load_config``: each one's overlays are refused by the other (before
    this check, the tagger's ``train`` accepted the recommender's overlays and ignored them)."""
    for overlay in ("recommend/tiny", "recommend/embeddings", "recommend/default"):
        with pytest.raises(UserInputError, match=rf"configs/{overlay}.yaml: unknown key"):
            load_config([*TINY, overlay])
    with pytest.raises(UserInputError, match=r"configs/model/probes.yaml: unknown key model\.tagger"):
        load_recommend_config(["model/probes"])
    typo = overlay_file(tmp_path, "model: {history: {init_args: {width: 32}}, genre_score: false}\n")
    with pytest.raises(UserInputError, match=r"unknown key model\.genre_score .*did you mean genre_scores"):
        load_recommend_config(["recommend/tiny", typo])


def test_a_typo_stops_train_before_any_work(tiny_catalog, tmp_path):
    """A real error cannot pass silently: ``train`` refuses the file before reading the
    manifest or making the run folder; a bad argument of a part stops the build."""
    from genre_tagger.data.dataset import build_loaders
    from genre_tagger.models.tagger import build_tagger
    from genre_tagger.training import train

    typo = overlay_file(tmp_path, "model: {tagger: {dropuot: 0.1}}\n")
    with pytest.raises(UserInputError, match=r"unknown key model\.tagger\.dropuot"):
        train(tiny_catalog, tmp_path / "run", config_files=[*TINY, typo], progress=False)
    assert not (tmp_path / "run").exists()
    bad_arg = overlay_file(tmp_path, "model: {fusion: {class_path: genre_tagger.models.fusion.AttentionFusion, "
                                     "init_args: {head: 2}}}\n", "bad_arg.yaml")
    config = load_config([*TINY, bad_arg])
    with pytest.raises(UserInputError, match=r"AttentionFusion: .*'head'"):
        build_tagger(config["model"], ["text"], 3)
    bad_loader = overlay_file(tmp_path, "data: {loaders: {image: {init_args: {sise: 32}}}}\n", "bad_loader.yaml")
    with pytest.raises(UserInputError, match=r"ImageLoader: .*'sise'"):
        build_loaders(load_config([*TINY, bad_loader])["data"]["loaders"], ["image"])


def test_legacy_configs_and_overlays_are_upgraded():
    from genre_tagger.training.build import build_strategy
    from genre_tagger.training.strategies import EndToEndTraining, StagedTraining

    legacy = {"training": {"mode": "end_to_end"}, "optim": {"lr": 0.01, "weight_decay": 0.0}}
    upgraded = upgrade_config(legacy)
    assert isinstance(build_strategy(upgraded), EndToEndTraining)
    assert upgraded["optimizer"] == {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.01, "weight_decay": 0.0}}
    assert upgrade_config(upgraded) == upgraded                                # idempotent
    assert isinstance(build_strategy(load_config()), StagedTraining)
    with pytest.raises(UserInputError, match="training.mode"):
        upgrade_config({"training": {"mode": "fancy"}})
    with pytest.raises(UserInputError, match="late_fusion"):
        upgrade_config({"model": {"tagger": {"late_fusion": True}}})


def test_an_old_overlay_file_is_upgraded_before_its_keys_are_checked(tmp_path):
    old = overlay_file(tmp_path, "training: {mode: end_to_end}\noptim: {lr: 0.01}\n"
                                 "model: {tagger: {late_fusion: false, late_dropout: 0.2}}\n")
    config = load_config([*TINY, old])
    assert config["training"]["class_path"].endswith("EndToEndTraining")
    assert config["optimizer"]["init_args"]["lr"] == 0.01 and "optim" not in config
    assert "late_fusion" not in config["model"]["tagger"]


# --- defaults once -----------------------------------------------------------------------

def _defaults(cls) -> dict:
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()}


def test_code_defaults_are_the_shipped_yaml():
    """configs/default.yaml states each default once; where the code has one too, it is the
    same value (a direct Python caller gets what a run gets)."""
    from genre_tagger.config import import_object
    from genre_tagger.metrics import calibrate_thresholds
    from genre_tagger.models.tagger import GenreTagger
    from genre_tagger.runs.trainers import TrainerFactory
    from genre_tagger.training.strategies import PretrainSettings

    default = load_config()
    tagger = _defaults(GenreTagger)
    assert {k: tagger[k] for k in default["model"]["tagger"]} == default["model"]["tagger"]
    pretraining = {f.name: f.default for f in dataclasses.fields(PretrainSettings)}
    assert pretraining == default["encoder_pretraining"]                     # every field, and in the YAML
    from genre_tagger.training.subset_heads import SubsetHeadSettings

    assert {f.name: f.default for f in dataclasses.fields(SubsetHeadSettings)} == default["subset_heads"]
    from genre_tagger.training.presence_calibration import PresenceCalibrationSettings

    assert {f.name: f.default for f in dataclasses.fields(PresenceCalibrationSettings)} == default["presence_calibration"]
    for section in ("loss", "scheduler"):
        code = _defaults(import_object(default[section]["class_path"]))
        assert {k: code[k] for k in default[section]["init_args"]} == default[section]["init_args"], section
    assert _defaults(calibrate_thresholds)["min_positives"] == default["calibration"]["min_positives"]
    patience = next(f for f in dataclasses.fields(TrainerFactory) if f.name == "patience")
    assert patience.default is dataclasses.MISSING                           # each job's YAML says
    with pytest.raises(KeyError):
        TrainerFactory.from_config({"max_epochs": 1}, progress=False)


def test_the_classic_loader_defaults_are_the_plain_configs():
    """model/plain's loader settings are AudioLoader's own defaults (the reference model's
    loader relies on them)."""
    from genre_tagger.data.audio import AudioLoader

    loader_args = load_config(["model/plain"])["data"]["loaders"]["audio"]["init_args"]
    defaults = _defaults(AudioLoader)
    assert {k: defaults[k] for k in loader_args} == loader_args


def test_parts_are_built_once_from_the_config(tmp_path):
    from genre_tagger.training.build import build_parts

    config = load_config(TINY)
    parts = build_parts(config, np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32), tmp_path, progress=False)
    assert parts.loss.pos_weight.shape == (2,)
    assert parts.trainers.patience == config["trainer"]["patience"] == 4
    assert parts.pretraining.max_epochs == config["encoder_pretraining"]["max_epochs"] == 2
    assert parts.embedding.num_workers == config["data"]["num_workers"] == 0
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


# --- every shipped overlay, one batch ----------------------------------------------------

def shipped(*folders: str) -> list[str]:
    return sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for folder in folders
                  for p in CONFIG_DIR.glob(f"{folder}/*.yaml"))


TAGGER_OVERLAYS = shipped("model", "trainer", "logger", "experiment", "search")
RECOMMENDER_OVERLAYS = shipped("recommend")
NEEDS_GPU = {"trainer/gpu", "trainer/ddp"}                     # built here, run only where CUDA is
ON_THE_DEFAULT = {"model/text_finetune": ["text"],              # tunes the default's MiniLM view: not on tiny
                  "model/runtime_pytorch": ["image"], "model/runtime_onnx_float32": ["audio", "text"]}  # the default's runtimes
SLOW = {"model/audio_musicnn", "model/audio_musicnn_finetune", "model/text_finetune",
        "model/runtime_pytorch", "model/runtime_onnx_float32"}  # 2 albums, not 4


def test_every_shipped_overlay_is_covered():
    every = {str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.glob("*/*.yaml")}
    assert every == set(TAGGER_OVERLAYS) | set(RECOMMENDER_OVERLAYS)
    assert {"experiment/tiny", "model/fusion_gated", "trainer/ddp", "search/off", "recommend/tiny"} <= every


@pytest.fixture(scope="module")
def training_data(tiny_catalog):
    from genre_tagger.data.labelled import load_training_data

    return load_training_data(tiny_catalog, None, seed=0)


@pytest.mark.parametrize("overlay", TAGGER_OVERLAYS)
def test_every_tagger_overlay_builds_and_trains_one_batch(overlay, training_data, tmp_path, one_torch_thread):
    """Each overlay on the tiny experiment (text_finetune on the default, text only): loaders,
    tagger, strategy, parts and Trainer built as ``train`` builds them, then one batch of 4
    albums (2 for the slow pretrained encoders) decoded, a forward pass, the loss, a backward
    pass (reaching the encoders an overlay leaves trainable) and an optimizer and scheduler
    step, which must change a weight."""
    from genre_tagger.data.dataset import AlbumCollator, AlbumDataset, build_loaders
    from genre_tagger.models.encoders.views import fit_views
    from genre_tagger.models.tagger import build_tagger
    from genre_tagger.tracking import resolve_wandb_mode
    from genre_tagger.training.build import build_parts, build_strategy

    data = training_data
    config = load_config([overlay] if overlay in ON_THE_DEFAULT else [*TINY, overlay])
    modalities = ON_THE_DEFAULT.get(overlay, config["modalities"])
    train_rows = data.splits["train"]
    rows = [i for i in train_rows if all(data.records[i].has_modality(m) for m in modalities)]
    rows = rows[:2 if overlay in SLOW else 4]
    records = [data.records[i] for i in rows]
    loaders = build_loaders(config["data"]["loaders"], modalities)
    tagger = build_tagger(config["model"], modalities, len(data.vocabulary))
    fit_views(tagger.encoders, loaders, records)
    strategy = build_strategy(config)
    parts = build_parts(config, data.targets[train_rows], tmp_path / "cache", progress=False)
    assert resolve_wandb_mode(config["logger"]["wandb"]["mode"]) in {"online", "offline", "disabled"}
    assert parts.trainers.patience == config["trainer"]["patience"]
    if overlay in NEEDS_GPU and not torch.cuda.is_available():
        assert parts.trainers.settings["accelerator"] == "gpu"
        return
    parts.trainers(max_epochs=1)  # Lightning accepts the trainer section
    dataset = AlbumDataset(records, loaders, data.targets[rows], training=True)
    batch = AlbumCollator(loaders)([dataset[i] for i in range(len(dataset))])
    assert all(batch[m]["present"].all() for m in modalities)
    tagger.train()
    tagger.modality_dropout = 0.0  # one batch: every modality must reach its encoder
    loss = parts.loss(tagger({m: batch[m] for m in modalities}), batch["labels"])
    loss.backward()
    trainable = [p for p in tagger.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer = parts.optimizer(trainable)
    scheduler = parts.scheduler(optimizer, max_epochs=config["trainer"]["max_epochs"])
    optimizer.step()
    scheduler.step()
    assert torch.isfinite(loss) and loss.item() > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, trainable))
    tuned = [p for p in tagger.encoders.parameters() if p.requires_grad]  # e.g. text_finetune's top layers
    assert not tuned or any(p.grad is not None and p.grad.abs().sum() > 0 for p in tuned)
    assert type(strategy).__name__ in {"StagedTraining", "EndToEndTraining"}


def test_the_after_training_hooks_import():
    """A wrong hook path in configs/default.yaml would otherwise show only at the end of a
    whole ``train``."""
    from genre_tagger.config import import_object

    for path in load_config()["after_training"].values():
        assert callable(import_object(path))


@pytest.mark.parametrize("overlay", RECOMMENDER_OVERLAYS)
def test_every_recommender_overlay_builds_and_trains_one_batch(overlay, one_torch_thread):
    """recommend/default.yaml overlaid by ``overlay``: the model built as ``train-recommender``
    builds it, and one batch of next-album windows over a 6-album table: logits for every
    album, a cross-entropy, a backward pass."""
    from genre_tagger.recommend.model import GENRES, PAD, AlbumTable, pad_right_aligned
    from genre_tagger.recommend.store import build_model

    torch.manual_seed(0)
    config = load_recommend_config([overlay])
    modalities = ["audio", "text"]
    inputs = (modalities if config["model"]["embeddings"] else []) + ([GENRES] if config["model"]["genre_scores"] else [])
    dims = {"audio": 12, "text": 10, GENRES: 5}
    n, ids = 6, [f"a{i}" for i in range(6)]
    present = {m: torch.tensor([True, True, False, True, True, True]) for m in inputs}
    table = AlbumTable(ids, {m: torch.rand(n, dims[m]) for m in inputs}, present,
                       torch.tensor([1, 2, 3, 4, 0, 0]))                      # two cold albums
    model = build_model(config, {m: dims[m] for m in inputs}, n_ids=4).train()
    windows = [[0, 1, 2, 3], [3, 2, 4], [5, 0]]
    sequences, targets = pad_right_aligned([w[:-1] for w in windows]), pad_right_aligned([w[1:] for w in windows])
    logits = model(sequences, table)
    assert logits.shape == (3, sequences.shape[1], n)
    real = targets != PAD
    loss = torch.nn.functional.cross_entropy(logits[real], targets[real])
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
