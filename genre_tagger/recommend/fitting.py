"""Fitting one recommender: the config, the model built from it, training on leave-last-out
windows with the core's Trainers (early stopping on validation MRR, the best epoch's
weights kept: ``genre_tagger.runs.trainers``), and the cold-album offset fitted after.

``train_one`` is what `train-recommender`, `evaluate-recommender` (an id-only baseline
when the run has none) and `ablate-recommender` call.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from genre_tagger.config import deep_merge, load_config, read_yaml
from genre_tagger.errors import UserInputError
from genre_tagger.recommend.catalog import album_table, model_inputs
from genre_tagger.recommend.cooccurrence import cooccurrence_vectors
from genre_tagger.recommend.interactions import Interactions
from genre_tagger.recommend.lit_module import (
    HeldOut, LengthBuckets, NextAlbumWindows, RecommenderModule, collate_held_out, collate_windows,
)
from genre_tagger.recommend.metrics import ranking_metrics, target_ranks
from genre_tagger.recommend.model import AlbumTable, NextAlbumModel
from genre_tagger.recommend.splits import LeaveLastOut
from genre_tagger.recommend.store import RecommenderBundle, build_model
from genre_tagger.runs.trainers import TrainerFactory, best_epoch, epochs_trained, fit
from genre_tagger.upgrade import upgrade_recommender_config

MONITOR = "val_mrr"  # smoother than hit rate@10 on few users; both are logged
ID_STARTS = ("cooccurrence", "random")  # model.id_start: where the id embeddings start


def load_recommend_config(config_files: list[str] | None) -> dict:
    """configs/recommend/default.yaml overlaid by ``config_files`` (an old overlay's settings
    upgraded as a checkpoint's are)."""
    return load_config(config_files, base=read_yaml("recommend/default"), upgrade=upgrade_recommender_config)


def fit_model(model: NextAlbumModel, table: AlbumTable, split: LeaveLastOut, config: dict, loggers: list,
              progress: bool) -> dict[str, Any]:
    """Train on the training windows, keep the best epoch by validation MRR; returns the
    training summary (``best_val_mrr``, ``best_epoch``, ``epochs``, ``train_seconds``)."""
    module = RecommenderModule(model, table, **config["optim"])
    windows = NextAlbumWindows(split.training_sequences(), model.max_len)
    buckets = LengthBuckets([len(w) for w in windows.windows], config["data"]["batch_size"], config["seed"])
    train_data = DataLoader(windows, batch_sampler=buckets, collate_fn=collate_windows)
    val_data = DataLoader(HeldOut(split.train, split.val_target), batch_size=512, collate_fn=collate_held_out)
    trainer = TrainerFactory.from_config(config["trainer"], progress, monitor=MONITOR)(loggers=loggers)
    clock = time.monotonic()
    best = fit(module, trainer, train_dataloaders=train_data, val_dataloaders=val_data)
    seconds = time.monotonic() - clock
    model.cpu().eval()
    return {"best_val_mrr": best, "best_epoch": best_epoch(trainer), "epochs": epochs_trained(trainer),
            "train_seconds": seconds}


def calibrate_cold_offset(model: NextAlbumModel, table: AlbumTable, split: LeaveLastOut) -> float:
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


def init_ids_from_cooccurrence(model: NextAlbumModel, data: Interactions) -> None:
    """Start the id embeddings (rows 1..n, warm albums in catalog order) from the training
    events' co-occurrence (``cooccurrence.cooccurrence_vectors``) instead of noise."""
    ids = model.albums.ids
    rows = np.flatnonzero(data.split.seen_in_training(data.n_items))
    scale = float(ids.weight[1:].detach().std())
    vectors = cooccurrence_vectors(data.split.training_sequences(), rows, ids.embedding_dim, scale)
    with torch.no_grad():
        ids.weight[1:] = torch.from_numpy(vectors)


def train_one(data: Interactions, content: dict, present: dict, modalities: list[str], config: dict,
              loggers: list, progress: bool) -> tuple[RecommenderBundle, dict]:
    """One model on ``modalities`` (``[]`` = id only); returns it (no tagger named yet) and
    its training summary (``fit_model``'s plus ``cold_offset``)."""
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    warm = data.warm_ids()
    if not modalities:  # without content a dropped id leaves nothing: the id-only model keeps them all
        config = deep_merge(config, {"model": {"albums": {"init_args": {"id_dropout": 0.0}}}})
    inputs = model_inputs(modalities, config["model"])
    missing = [m for m in inputs if m not in content]
    if missing:
        raise ValueError(f"train_one(): content lacks {missing} (content_features(..., genre_scores=True))")
    input_dims = {m: int(content[m].shape[1]) for m in inputs}
    model = build_model(config, input_dims, len(warm))
    id_start = config["model"]["id_start"]
    if id_start not in ID_STARTS:
        raise UserInputError(f"model.id_start must be one of {', '.join(ID_STARTS)}, got {id_start!r}")
    if id_start == "cooccurrence" and warm:
        init_ids_from_cooccurrence(model, data)
    counts = np.bincount([a for s in data.split.training_sequences() for a in s], minlength=data.n_items)
    model.albums.set_play_counts(torch.from_numpy(counts[counts > 0]))
    table = album_table(data.ids, {m: content[m] for m in inputs}, {m: present[m] for m in inputs}, warm)
    summary = fit_model(model, table, data.split, config, loggers, progress)
    summary["cold_offset"] = calibrate_cold_offset(model, table, data.split)
    return RecommenderBundle(model, config, modalities, input_dims, warm, None), summary
