"""`genre-tagger train`: the strategy named in the config trains the tagger, thresholds are
calibrated on val, and rank 0 saves the run.

A run directory holds ``model.ckpt``, ``config.yaml``, ``labels.txt``, ``thresholds.csv``,
``metrics.json`` (val, and test when the manifest has a test split) and ``logs/``.
Multi-process runs (``trainer.strategy: ddp`` / ``ddp_spawn``, torchrun, SLURM) train on
every rank; only rank 0 writes (``genre_tagger.runs``). After the tagger is saved-ready, the
config's ``after_training`` functions (import paths; by default the joint search space)
add what other jobs need to the checkpoint: ``hook(bundle, records, splits, cache_dir,
progress) -> (extra, report)``, stored under ``bundle.extra`` and ``metrics.json``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import save_checkpoint
from genre_tagger.config import dump_yaml, import_object, load_config
from genre_tagger.data.dataset import build_loaders
from genre_tagger.metrics import calibrate_thresholds, compute_metrics, per_label_rows, taxonomy_metrics
from genre_tagger.models.encoders.views import fit_views
from genre_tagger.models.tagger import build_tagger
from genre_tagger.tracking import RunTracker
from genre_tagger.data.labelled import TrainingData, check_modalities, load_training_data
from genre_tagger.data.modalities import modality_names, parse_modalities
from genre_tagger.runs import default_cache_dir, is_global_zero, prepare_run_dir, release_run_dir
from genre_tagger.training.build import build_parts, build_strategy, strategy_name
from genre_tagger.training.run_files import write_run_files
from genre_tagger.upgrade import upgrade_config
from genre_tagger.training.strategies import Fitted
from genre_tagger.taxonomy import AUTO, Taxonomy, load_taxonomy_option


def calibrate_and_score(fitted: Fitted, data: TrainingData, min_positives: int, tracker: RunTracker | None = None,
                        taxonomy: Taxonomy | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-label thresholds ``[L]`` from val scores, and the val (and test) metrics with them.

    ``fitted.score`` gives unconstrained scores; with a ``taxonomy`` they are constrained
    (``Taxonomy.constrain``, as the prediction path does once the model holds the taxonomy)
    before calibration and metrics, and the metrics gain the taxonomy's (``taxonomy_metrics``)."""
    def scored(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw = fitted.score(rows)
        return (taxonomy.constrain(raw) if taxonomy else raw), raw

    def evaluated(rows: np.ndarray, scores: np.ndarray, raw: np.ndarray) -> dict[str, Any]:
        result = compute_metrics(data.targets[rows], scores, thresholds, taxonomy)
        if taxonomy:
            result.update(taxonomy_metrics(data.targets[rows], scores, raw, thresholds, taxonomy))
        return result

    val_rows = data.splits["val"]
    val_scores, val_raw = scored(val_rows)
    thresholds = calibrate_thresholds(data.targets[val_rows], val_scores, min_positives)
    metrics: dict[str, Any] = {"val": evaluated(val_rows, val_scores, val_raw)}
    test_rows = data.splits["test"]
    if len(test_rows):
        test_scores, test_raw = scored(test_rows)
        metrics["test"] = evaluated(test_rows, test_scores, test_raw)
        if tracker is not None:
            tracker.log_table("test_per_label", per_label_rows(data.targets[test_rows], test_scores, thresholds,
                                                               data.vocabulary.names))
    return thresholds, metrics


def train(
    manifest: str | Path,
    output: str | Path,
    modalities: str | list[str] | None = None,
    config_files: list[str] | None = None,
    labels_file: str | Path | None = None,
    wandb_mode: str | None = None,
    progress: bool = True,
    taxonomy: str | Path | None = None,
) -> dict[str, Any]:
    """The whole `train` command. Returns the metrics written to ``metrics.json``.

    ``taxonomy``: a ``child<TAB>parent`` file, or ``"auto"`` (inferred from the training
    labels and written to ``RUN_DIR/taxonomy.tsv``), or None."""
    config = upgrade_config(load_config(config_files))
    config["modalities"] = parse_modalities(modalities if modalities is not None else config.get("modalities"),
                                            modality_names())
    if wandb_mode:
        config["logger"]["wandb"]["mode"] = wandb_mode
    run_dir = prepare_run_dir(output)
    try:
        return _train(manifest, run_dir, config, labels_file, progress, taxonomy)
    finally:
        release_run_dir(run_dir)


def _train(manifest: str | Path, run_dir: Path, config: dict, labels_file: str | Path | None,
           progress: bool, taxonomy_option: str | Path | None = None) -> dict[str, Any]:
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    data = load_training_data(manifest, labels_file, config["seed"])
    config["modalities"] = modalities = check_modalities(data, config["modalities"])
    taxonomy = load_taxonomy_option(taxonomy_option, data.vocabulary.names, data.targets[data.splits["train"]])
    writer = is_global_zero()
    if writer and str(taxonomy_option) == AUTO:
        (run_dir / "taxonomy.tsv").write_text(taxonomy.to_tsv(), encoding="utf-8")
    if writer:
        dump_yaml(config, run_dir / "config.yaml")  # snapshot before anything long runs
    tracker = RunTracker(run_dir, config["logger"], run_name=run_dir.name, config=config,
                         tags=["train", *modalities], enabled=writer)
    try:
        loaders = build_loaders(config["data"]["loaders"], modalities)
        tagger = build_tagger(config["model"], modalities, len(data.vocabulary))
        fit_views(tagger.encoders, loaders, [data.records[i] for i in data.splits["train"]], progress=progress)
        strategy = build_strategy(config)
        cache_dir = default_cache_dir(config["data"].get("cache_dir"), manifest)
        parts = build_parts(config, data.targets[data.splits["train"]], cache_dir, progress, tracker.loggers)
        fitted = strategy.fit(tagger, loaders, data, parts, tracker)
        thresholds, metrics = calibrate_and_score(fitted, data, config["calibration"]["min_positives"], tracker,
                                                  taxonomy)
        tagger.taxonomy = taxonomy or None  # from here on the prediction path constrains the scores
        metrics.update(modalities=modalities, labels=len(data.vocabulary), best_val_macro_roc_auc=fitted.best_val,
                       presence_rates=fitted.presence, encoder_pretraining=fitted.stage1,
                       training_mode=strategy_name(strategy))
        for split in ("val", "test"):
            if split in metrics:
                tracker.log_summary(metrics[split], prefix=f"{split}/")
        tracker.log_summary(fitted.presence, prefix="presence/")
        if writer:
            bundle = TaggerBundle(tagger, loaders, data.vocabulary.names, thresholds, copy.deepcopy(config))
            for name, path in (config.get("after_training") or {}).items():
                extra, metrics[name] = import_object(path)(bundle, data.records, data.splits, cache_dir, progress)
                bundle.extra.update(extra)
            save_checkpoint(run_dir / "model.ckpt", bundle)
            write_run_files(run_dir, config, bundle.labels, bundle.thresholds, metrics)
    finally:
        tracker.finish()
    return metrics
