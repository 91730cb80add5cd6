"""`genre-tagger train-recommender`: the sequence model on leave-last-out training events.

A run directory holds ``recommender.ckpt``, ``id_only.ckpt`` (the same model without
album content: the id-only baseline), ``tagger.ckpt`` (a copy of the tagger whose
encoders give album content), ``config.yaml``, ``metrics.json`` (validation, and the
test metrics with every baseline, as `evaluate-recommender` computes them) and ``logs/``.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from genre_tagger.config import deep_merge, dump_yaml, load_config, read_yaml
from genre_tagger.data.events import read_events
from genre_tagger.data.manifest import read_manifest
from genre_tagger.errors import UserInputError
from genre_tagger.recommend.catalog import (
    album_table, content_features, model_inputs, parse_modalities, tagger_modalities,
)
from genre_tagger.recommend.lit_module import (
    HeldOut, LengthBuckets, NextAlbumWindows, RecommenderModule, collate_held_out, collate_windows,
)
from genre_tagger.recommend.metrics import ranking_metrics, target_ranks
from genre_tagger.recommend.model import GENRES
from genre_tagger.recommend.splits import LeaveLastOut, leave_last_out
from genre_tagger.recommend.store import RecommenderBundle, build_model, save_recommender
from genre_tagger.tracking import RunTracker

MONITOR = "val_mrr"  # smoother than hit rate@10 on few users; both are logged


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Interactions:
    """A manifest's albums and its events split leave-last-out."""

    ids: list[str]
    records: list
    split: LeaveLastOut

    @property
    def n_items(self) -> int:
        return len(self.ids)

    def warm_ids(self) -> list[str]:
        """Albums of some training event, in catalog order: they get an id embedding."""
        seen = self.split.seen_in_training(self.n_items)
        return [album for album, s in zip(self.ids, seen) if s]


def load_interactions(manifest: str | Path, events: str | Path) -> Interactions:
    """Read both files; every skipped line is reported on stderr, the rest is used."""
    records, issues = read_manifest(manifest)
    for issue in issues:
        say(f"warning: {issue.format(manifest)}")
    if not records:
        raise UserInputError(f"{manifest}: no usable album")
    ids = [r.id for r in records]
    log = read_events(events, ids)
    for line in log.summary(events):
        say(f"warning: {line}")
    split = leave_last_out(log.histories, {album: i for i, album in enumerate(ids)})
    if not split.users:
        raise UserInputError(f"{events}: no user has the 3 events leave-last-out needs")
    return Interactions(ids, records, split)


def load_recommend_config(config_files: list[str] | None) -> dict:
    return load_config(config_files, base=read_yaml("recommend/default"))


def cache_dir_for(config: dict, manifest: str | Path) -> Path:
    cache = config["data"].get("cache_dir")
    return Path(cache) if cache else Path(manifest).resolve().parent / ".genre_tagger_cache"


class BestState(pl.Callback):
    """Keeps the best validation epoch's weights in memory."""

    def __init__(self, monitor: str):
        self.monitor, self.best, self.state, self.epoch = monitor, -float("inf"), None, 0

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) > self.best:
            self.best, self.epoch = float(value), trainer.current_epoch
            self.state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}


def fit_model(model, table, split: LeaveLastOut, config: dict, loggers: list, progress: bool) -> dict[str, Any]:
    """Train on the training windows, keep the best epoch by validation MRR."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    settings = config["trainer"]
    module = RecommenderModule(model, table, **config["optim"])
    windows = NextAlbumWindows(split.training_sequences(), model.max_len)
    buckets = LengthBuckets([len(w) for w in windows.windows], config["data"]["batch_size"], config["seed"])
    train_data = DataLoader(windows, batch_sampler=buckets, collate_fn=collate_windows)
    val_data = DataLoader(HeldOut(split.train, split.val_target), batch_size=512, collate_fn=collate_held_out)
    best = BestState(MONITOR)
    trainer = pl.Trainer(
        max_epochs=settings["max_epochs"], accelerator=settings.get("accelerator", "auto"),
        devices=settings.get("devices", 1), precision=settings.get("precision", "32-true"),
        logger=loggers or False, enable_checkpointing=False, enable_progress_bar=progress,
        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1,
        callbacks=[pl.callbacks.EarlyStopping(MONITOR, mode="max", patience=settings["patience"]), best,
                   # epoch bars on stderr, as `train`'s: stdout carries results (the demo's summary)
                   *([pl.callbacks.RichProgressBar(console_kwargs={"stderr": True})] if progress else [])],
    )
    clock = time.monotonic()
    trainer.fit(module, train_data, val_data)
    if trainer.interrupted:
        raise KeyboardInterrupt
    if best.state is not None:
        model.load_state_dict(best.state)
    model.cpu().eval()
    return {"best_val_mrr": best.best, "best_epoch": best.epoch, "epochs": trainer.current_epoch,
            "train_seconds": time.monotonic() - clock}


def calibrate_cold_offset(model, table, split: LeaveLastOut) -> float:
    """The score offset for albums without an id that maximises validation hit rate@10 (MRR
    breaks ties). Nothing in training says how likely an unplayed album is to be played
    next (new releases are, on release); one number fitted on validation events does,
    the way the tagger's thresholds are fitted on val. Content still ranks the cold albums
    among themselves."""
    cold = (table.id_index == 0).numpy()
    if not cold.any() or not cold[split.val_target].any():
        return 0.0
    model.eval()
    model.albums.cold_offset.zero_()
    scores = np.concatenate([model.score(split.train[s:s + 512], table).float().numpy()
                             for s in range(0, len(split.train), 512)])
    best, best_key = 0.0, None
    for offset in np.arange(-4.0, 12.01, 0.5):
        metrics = ranking_metrics(target_ranks(scores + offset * cold, split.val_target, split.train))
        key = (round(metrics["hit_rate_at_10"], 6), metrics["mrr"])
        if best_key is None or key > best_key:
            best, best_key = float(offset), key
    model.albums.cold_offset.fill_(best)
    return best


def init_ids_from_cooccurrence(model, data: Interactions) -> None:
    """Start the id embeddings (rows 1..n, warm albums in catalog order) from the training
    events' co-occurrence (``cooccurrence.cooccurrence_vectors``) instead of noise."""
    from genre_tagger.recommend.cooccurrence import cooccurrence_vectors

    ids = model.albums.ids
    rows = np.flatnonzero(data.split.seen_in_training(data.n_items))
    scale = float(ids.weight[1:].detach().std())
    vectors = cooccurrence_vectors(data.split.training_sequences(), rows, ids.embedding_dim, scale)
    with torch.no_grad():
        ids.weight[1:] = torch.from_numpy(vectors)


def train_one(data: Interactions, content: dict, present: dict, modalities: list[str], config: dict,
              loggers: list, progress: bool) -> tuple[RecommenderBundle, dict]:
    """One model on ``modalities`` (``[]`` = id only); returns it and its training summary."""
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    warm = data.warm_ids()
    if not modalities:  # without content a dropped id leaves nothing: the id-only model keeps them all
        config = deep_merge(config, {"model": {"albums": {"init_args": {"id_dropout": 0.0}}},
                                     "optim": {"content_loss": 0.0}})
    inputs = model_inputs(modalities, config["model"])
    missing = [m for m in inputs if m not in content]
    if missing:
        raise ValueError(f"train_one(): content lacks {missing} (content_features(..., genre_scores=True))")
    input_dims = {m: int(content[m].shape[1]) for m in inputs}
    model = build_model(config, input_dims, len(warm))
    if config["model"].get("id_start", "random") == "cooccurrence" and warm:
        init_ids_from_cooccurrence(model, data)
    counts = np.bincount([a for s in data.split.training_sequences() for a in s], minlength=data.n_items)
    model.albums.set_play_counts(torch.from_numpy(counts[counts > 0]))
    table = album_table(data.ids, {m: content[m] for m in inputs}, {m: present[m] for m in inputs}, warm)
    summary = fit_model(model, table, data.split, config, loggers, progress)
    summary["cold_offset"] = calibrate_cold_offset(model, table, data.split)
    return RecommenderBundle(model, config, modalities, input_dims, warm, None), summary


def prepare_run_dir(output: str | Path) -> Path:
    run_dir = Path(output)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserInputError(f"run directory {run_dir} already exists and is not empty; choose a new --output")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def train_recommender(
    checkpoint: str | Path, manifest: str | Path, events: str | Path, output: str | Path,
    modalities: str | list[str] | None = None, config_files: list[str] | None = None,
    wandb_mode: str | None = None, progress: bool = True,
) -> dict[str, Any]:
    """The whole `train-recommender` command; returns what ``metrics.json`` holds."""
    from genre_tagger.recommend.evaluation import evaluate_bundles

    config = load_recommend_config(config_files)
    if wandb_mode:
        config["logger"]["wandb"]["mode"] = wandb_mode
    if not Path(checkpoint).is_file():
        raise UserInputError(f"tagger checkpoint not found: {checkpoint}")
    config["modalities"] = parse_modalities(modalities, tagger_modalities(checkpoint))
    data = load_interactions(manifest, events)
    run_dir = prepare_run_dir(output)
    dump_yaml(config, run_dir / "config.yaml")
    content, present = content_features(checkpoint, data.records, config["modalities"], cache_dir_for(config, manifest),
                                         config["data"]["num_workers"], progress,
                                         genre_scores=bool(config["model"].get("genre_scores")))
    tracker = RunTracker(run_dir, config["logger"], run_name=run_dir.name, config=config,
                         tags=["recommender", *config["modalities"]])
    try:
        inputs = model_inputs(config["modalities"], config["model"])
        described = ", ".join("genre scores" if m == GENRES else f"{m} embeddings" for m in inputs)
        say(f"training the recommender on {len(data.split.users)} users, {data.n_items} albums "
            f"(content: {described or 'none'}; modalities read: {', '.join(config['modalities']) or 'none'})")
        bundle, summary = train_one(data, content, present, config["modalities"], config, tracker.loggers, progress)
        shutil.copyfile(checkpoint, run_dir / "tagger.ckpt")
        bundle.tagger = run_dir / "tagger.ckpt"
        save_recommender(run_dir / "recommender.ckpt", bundle)
        id_only = None
        if config["baselines"].get("id_only", True):
            say("training the id-only baseline (the same model without album content)")
            id_only, summary["id_only"] = train_one(data, content, present, [], config, [], progress)
            save_recommender(run_dir / "id_only.ckpt", id_only)
        metrics = evaluate_bundles(bundle, id_only, data, content, present, config)
        metrics["training"] = summary
        tracker.log_summary({k: v for k, v in metrics.items() if not isinstance(v, dict)}, prefix="test/")
        for name, values in metrics["baselines"].items():
            tracker.log_summary(values, prefix=f"baseline_{name}/")
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    finally:
        tracker.finish()
    return metrics

