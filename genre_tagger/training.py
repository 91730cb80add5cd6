"""`genre-tagger train`: stage 1 trains non-frozen encoders alone, stage 2 trains the fusion
head on cached embeddings, then thresholds are calibrated on val and the run is saved.

A run directory holds ``model.ckpt``, ``config.yaml``, ``labels.txt``, ``thresholds.csv``,
``metrics.json`` (val, and test when the manifest has a test split) and ``logs/``.
"""

from __future__ import annotations

import copy
import json
import logging
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from genre_tagger.checkpoint import TaggerBundle, save_checkpoint
from genre_tagger.config import dump_yaml, instantiate, load_config
from genre_tagger.data.dataset import AlbumCollator, EmbeddingDataset, PreloadedModalityDataset, build_loaders
from genre_tagger.data.manifest import read_manifest
from genre_tagger.data.records import AlbumRecord
from genre_tagger.data.splits import assign_splits
from genre_tagger.errors import UserInputError
from genre_tagger.features import ModalityFeatures, encoder_fingerprint, extract_features, preload_items
from genre_tagger.labels import LabelVocabulary, describe_unknown
from genre_tagger.lit_module import TaggerModule
from genre_tagger.metrics import calibrate_thresholds, compute_metrics, per_label_rows
from genre_tagger.models.encoders.views import fit_views
from genre_tagger.models.tagger import GenreTagger, build_tagger
from genre_tagger.tracking import RunTracker

log = logging.getLogger(__name__)
MODALITY_ORDER = ("audio", "image", "text")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class TrainingData:
    """The labelled albums of a manifest: ``targets [N, L]`` and row indices per split."""

    records: list[AlbumRecord]
    vocabulary: LabelVocabulary
    targets: np.ndarray
    splits: dict[str, np.ndarray]


def parse_modalities(text: str | list[str] | None, default: list[str]) -> list[str]:
    """``"audio,text"`` -> ``["audio", "text"]`` in canonical order; rejects unknown names."""
    if text is None:
        names = list(default)
    else:
        names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [n for n in names if n not in MODALITY_ORDER]
    if unknown or not [n for n in names if n]:
        raise UserInputError(f"--modalities takes a non-empty subset of audio,image,text; got {text!r}")
    return [m for m in MODALITY_ORDER if m in names]


def prepare_run_dir(output: str | Path) -> Path:
    """A fresh run directory; an existing non-empty one is never silently overwritten."""
    run_dir = Path(output)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserInputError(f"run directory {run_dir} already exists and is not empty; choose a new --output")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def load_training_data(manifest: str | Path, labels_file: str | Path | None, seed: int) -> TrainingData:
    records, issues = read_manifest(manifest)
    for issue in issues:
        say(f"warning: {issue.format(manifest)}")
    records = [r for r in records if r.genres]
    if not records:
        raise UserInputError(f"{manifest}: no album has genres to train on")
    if any(r.split is None for r in records):
        say(f"assigned artist-disjoint splits to {assign_splits(records, seed=seed)} album(s) without one")
    train_records = [r for r in records if r.split == "train"]
    vocabulary = LabelVocabulary.from_file(labels_file) if labels_file else LabelVocabulary.from_records(train_records)
    targets, unknown = vocabulary.encode(records)
    if unknown:
        say(f"warning: {describe_unknown(unknown)}")
    splits = {name: np.array([i for i, r in enumerate(records) if r.split == name], dtype=np.int64)
              for name in ("train", "val", "test")}
    for name in ("train", "val"):
        if len(splits[name]) == 0:
            raise UserInputError(f"{manifest}: no labelled album has split={name}")
    return TrainingData(records, vocabulary, targets, splits)


def check_modalities(data: TrainingData, modalities: list[str]) -> list[str]:
    """Modalities some training album has; an absent one is an error when asked for alone."""
    train = [data.records[i] for i in data.splits["train"]]
    usable = [m for m in modalities if any(r.has_modality(m) for r in train)]
    for missing in sorted(set(modalities) - set(usable)):
        say(f"warning: no training album has {missing}: training without it")
    if not usable:
        raise UserInputError(f"no training album has any of: {', '.join(modalities)}")
    return usable


def quiet_lightning() -> None:
    """Keep Lightning's banners and tips out of a user's terminal (warnings still show)."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*in eval mode at the start of training.*", ".*LeafSpec.*", ".*does not have many workers.*",
                    ".*litlogger.*"):
        warnings.filterwarnings("ignore", message=pattern)


def progress_bar() -> pl.Callback:
    """Lightning's epoch bars on stderr: stdout carries results (`train > out.txt` stays clean)."""
    return pl.callbacks.RichProgressBar(console_kwargs={"stderr": True})


def make_trainer(config: dict, max_epochs: int, patience: int, loggers: list, progress: bool) -> pl.Trainer:
    settings = config["trainer"]
    quiet_lightning()
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator=settings.get("accelerator", "auto"),
        devices=settings.get("devices", "auto"),
        strategy=settings.get("strategy", "auto"),
        num_nodes=settings.get("num_nodes", 1),
        precision=settings.get("precision", "32-true"),
        logger=loggers or False,
        callbacks=[pl.callbacks.EarlyStopping("val_macro_roc_auc", mode="max", patience=patience),
                   BestWeights("val_macro_roc_auc"), *([progress_bar()] if progress else [])],
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )


class BestWeights(pl.Callback):
    """Keeps the best epoch's weights in memory (no large checkpoint files per epoch)."""

    def __init__(self, monitor: str):
        self.monitor = monitor
        self.best = -float("inf")
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) > self.best:
            self.best = float(value)
            self.state = {k: v.detach().clone() for k, v in module.model.state_dict().items()}

    def restore(self, model: torch.nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def _fit(module: TaggerModule, trainer: pl.Trainer, train_data: DataLoader, val_data: DataLoader) -> float:
    """``trainer.fit``; a Ctrl-C or SIGTERM during it surfaces as ``KeyboardInterrupt``.

    Lightning turns Ctrl-C into ``sys.exit(1)`` (leaving SIGINT ignored) and SIGTERM into a
    ``SystemExit`` whose status is 0, so a stopped run would otherwise look like success or
    like a crash. Callers and the CLI treat both as an interruption.
    """
    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, train_data, val_data)
    except SystemExit as stop:
        if trainer.interrupted:
            raise KeyboardInterrupt from stop
        raise
    finally:
        if sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)
    best = next(c for c in trainer.callbacks if isinstance(c, BestWeights))
    best.restore(module.model)
    return best.best


def make_loss(config: dict, train_targets: np.ndarray) -> torch.nn.Module:
    loss = instantiate(config["loss"])
    if hasattr(loss, "set_label_frequencies"):
        loss.set_label_frequencies(torch.from_numpy(train_targets.mean(axis=0)))
    return loss


def pretrain_encoder(
    modality: str, tagger: GenreTagger, loader, data: TrainingData, config: dict, tracker: RunTracker,
    progress: bool,
) -> dict[str, Any]:
    """Stage 1: train one non-frozen encoder alone (its modality only), then freeze it."""
    settings = config["encoder_pretraining"]
    encoder = tagger.encoders[modality]
    alone = GenreTagger({modality: encoder}, len(data.vocabulary), fusion={
        "class_path": "genre_tagger.models.fusion.MaskedMeanFusion"}, width=config["model"]["tagger"]["width"],
        head_hidden=config["model"]["tagger"]["head_hidden"], modality_dropout=0.0)
    indices = np.concatenate([data.splits["train"], data.splits["val"]])
    items, _ = preload_items([data.records[i] for i in indices], loader, config["data"]["num_workers"], progress)
    n_train = len(data.splits["train"])
    collate = AlbumCollator({modality: loader})

    def loader_for(part: slice, shuffle: bool) -> DataLoader:
        dataset = PreloadedModalityDataset(items[part], data.targets[indices[part]], modality)
        return DataLoader(dataset, batch_size=settings["batch_size"], shuffle=shuffle, collate_fn=collate)

    module = TaggerModule(alone, make_loss(config, data.targets[data.splits["train"]]), lr=settings["lr"],
                          weight_decay=config["optim"]["weight_decay"])
    trainer = make_trainer(config, settings["max_epochs"], settings["patience"], [], progress)
    say(f"stage 1: training the {modality} encoder alone ({n_train} train albums)")
    best = _fit(module, trainer, loader_for(slice(0, n_train), True), loader_for(slice(n_train, None), False))
    encoder.freeze()
    tracker.log_summary({"val_macro_roc_auc": best}, prefix=f"pretrain_{modality}/")
    return {"val_macro_roc_auc": best, "epochs": trainer.current_epoch}


def embed_catalog(
    tagger: GenreTagger, loaders: dict, records: list[AlbumRecord], config: dict, cache_dir: Path | None,
    progress: bool, seconds: dict[str, float] | None = None,
) -> dict[str, ModalityFeatures]:
    """Frozen-encoder embeddings of every album, per modality (cached on disk).
    ``seconds``, when given, receives the wall time per modality (near zero on a cache hit)."""
    device = "cuda" if torch.cuda.is_available() and config["trainer"].get("accelerator") != "cpu" else "cpu"
    features = {}
    for modality in tagger.modalities:
        clock = time.monotonic()
        encoder = tagger.encoders[modality]
        fingerprint = encoder_fingerprint(loaders[modality], config["model"]["encoders"][modality], encoder)
        features[modality] = extract_features(
            records, loaders[modality], encoder, fingerprint, cache_dir, batch_size=config["data"]["batch_size"],
            num_workers=config["data"]["num_workers"], device=device, progress=progress)
        encoder.cpu()
        if seconds is not None:
            seconds[modality] = time.monotonic() - clock
    return features


def embedding_dataset(features: dict[str, ModalityFeatures], targets: np.ndarray, rows: np.ndarray,
                      modalities: list[str]) -> EmbeddingDataset:
    return EmbeddingDataset(
        {m: torch.from_numpy(features[m].embeddings[rows]) for m in modalities},
        {m: torch.from_numpy(features[m].present[rows]) for m in modalities},
        torch.from_numpy(targets[rows]),
    )


def fit_fusion(
    tagger: GenreTagger, features: dict[str, ModalityFeatures], data: TrainingData, config: dict,
    loggers: list, progress: bool,
) -> float:
    """Stage 2: projections, fusion and head on cached embeddings; best val epoch kept."""
    batch_size = config["data"]["batch_size"]
    train_set = embedding_dataset(features, data.targets, data.splits["train"], tagger.modalities)
    val_set = embedding_dataset(features, data.targets, data.splits["val"], tagger.modalities)
    module = TaggerModule(tagger, make_loss(config, data.targets[data.splits["train"]]), **config["optim"])
    trainer = make_trainer(config, config["trainer"]["max_epochs"], config["trainer"]["patience"], loggers, progress)
    return _fit(module, trainer, DataLoader(train_set, batch_size=batch_size, shuffle=True),
                DataLoader(val_set, batch_size=256))


@torch.no_grad()
def scores_from_features(
    tagger: GenreTagger, features: dict[str, ModalityFeatures], rows: np.ndarray, modalities: list[str] | None = None
) -> np.ndarray:
    """Sigmoid scores ``[len(rows), L]``; modalities left out of ``modalities`` count as absent."""
    tagger.eval()
    use = [m for m in tagger.modalities if modalities is None or m in modalities]
    scores = []
    for start in range(0, len(rows), 1024):
        part = rows[start:start + 1024]
        embeddings = {m: torch.from_numpy(features[m].embeddings[part]) for m in use}
        present = {m: torch.from_numpy(features[m].present[part]) for m in use}
        if not use:
            embeddings = {tagger.modalities[0]: torch.zeros(len(part), 1)}
            present = {tagger.modalities[0]: torch.zeros(len(part), dtype=torch.bool)}
        scores.append(torch.sigmoid(tagger.logits_from_embeddings(embeddings, present)).numpy())
    return np.concatenate(scores) if scores else np.zeros((0, tagger.head[-1].out_features))


def presence_rates(features: dict[str, ModalityFeatures], rows: np.ndarray) -> dict[str, float]:
    return {m: float(f.present[rows].mean()) if len(rows) else 0.0 for m, f in features.items()}


def write_run_files(run_dir: Path, config: dict, labels: list[str], thresholds: np.ndarray, metrics: dict) -> None:
    dump_yaml(config, run_dir / "config.yaml")
    (run_dir / "labels.txt").write_text("".join(f"{name}\n" for name in labels), encoding="utf-8")
    rows = ["label,threshold"] + [f"{json.dumps(n)},{t:.6f}" for n, t in zip(labels, thresholds)]
    (run_dir / "thresholds.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")


def default_cache_dir(config: dict, manifest: str | Path) -> Path:
    cache = config["data"].get("cache_dir")
    return Path(cache) if cache else Path(manifest).resolve().parent / ".genre_tagger_cache"


def train(
    manifest: str | Path,
    output: str | Path,
    modalities: str | list[str] | None = None,
    config_files: list[str] | None = None,
    labels_file: str | Path | None = None,
    wandb_mode: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The whole `train` command. Returns the metrics written to ``metrics.json``."""
    config = load_config(config_files)
    config["modalities"] = parse_modalities(modalities, config.get("modalities", list(MODALITY_ORDER)))
    if wandb_mode:
        config["logger"]["wandb"]["mode"] = wandb_mode
    run_dir = prepare_run_dir(output)
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    data = load_training_data(manifest, labels_file, config["seed"])
    config["modalities"] = check_modalities(data, config["modalities"])
    dump_yaml(config, run_dir / "config.yaml")  # snapshot before anything long runs
    tracker = RunTracker(run_dir, config["logger"], run_name=run_dir.name, config=config,
                         tags=["train", *config["modalities"]])
    try:
        metrics, bundle = _train_stages(data, config, tracker, default_cache_dir(config, manifest), progress)
        save_checkpoint(run_dir / "model.ckpt", bundle)
        write_run_files(run_dir, config, bundle.labels, bundle.thresholds, metrics)
    finally:
        tracker.finish()
    return metrics


def _train_stages(data: TrainingData, config: dict, tracker: RunTracker, cache_dir: Path, progress: bool):
    modalities = config["modalities"]
    loaders = build_loaders(config["data"]["loaders"], modalities)
    tagger = build_tagger(config["model"], modalities, len(data.vocabulary))
    fit_views(tagger.encoders, loaders, [data.records[i] for i in data.splits["train"]], progress=progress)
    mode = config.get("training", {}).get("mode", "staged")
    stage1, presence = {}, {}
    if mode == "end_to_end":
        from genre_tagger.end_to_end import fit_end_to_end, raw_scores

        say("training end to end on decoded albums")
        best_val = fit_end_to_end(tagger, loaders, data, config, tracker.loggers, progress)
        score_rows = lambda rows: raw_scores(tagger, loaders, data, rows, config, progress)  # noqa: E731
    elif mode == "staged":
        for modality in modalities:
            if not tagger.encoders[modality].frozen:
                stage1[modality] = pretrain_encoder(modality, tagger, loaders[modality], data, config, tracker,
                                                    progress)
        say("embedding the catalog with the frozen encoders")
        features = embed_catalog(tagger, loaders, data.records, config, cache_dir, progress)
        say("stage 2: training the fusion head on cached embeddings")
        best_val = fit_fusion(tagger, features, data, config, tracker.loggers, progress)
        score_rows = lambda rows: scores_from_features(tagger, features, rows)  # noqa: E731
        presence = presence_rates(features, data.splits["train"])
    else:
        raise UserInputError(f"training.mode must be 'staged' or 'end_to_end', got {mode!r}")
    val_scores = score_rows(data.splits["val"])
    thresholds = calibrate_thresholds(data.targets[data.splits["val"]], val_scores,
                                      config["calibration"]["min_positives"])
    metrics: dict[str, Any] = {"val": compute_metrics(data.targets[data.splits["val"]], val_scores, thresholds)}
    if len(data.splits["test"]):
        test_scores = score_rows(data.splits["test"])
        metrics["test"] = compute_metrics(data.targets[data.splits["test"]], test_scores, thresholds)
        tracker.log_table("test_per_label", per_label_rows(
            data.targets[data.splits["test"]], test_scores, thresholds, data.vocabulary.names))
    metrics.update(modalities=modalities, labels=len(data.vocabulary), best_val_macro_roc_auc=best_val,
                   presence_rates=presence, encoder_pretraining=stage1, training_mode=mode)
    for split in ("val", "test"):
        if split in metrics:
            tracker.log_summary(metrics[split], prefix=f"{split}/")
    tracker.log_summary(presence, prefix="presence/")
    bundle = TaggerBundle(tagger, loaders, data.vocabulary.names, thresholds, copy.deepcopy(config))
    return metrics, bundle
