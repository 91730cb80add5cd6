"""`genre-tagger ablate`: what each modality brings, and what its absence costs.

Every run shares one data split, one set of frozen encoders and one set of cached
embeddings, so the runs differ only in which modalities the fusion head sees:

- ``trained_on_subset``: a fusion head trained (and calibrated on val) on each non-empty
  subset of the available modalities (7 runs for 3 modalities);
- ``full_model_subset_at_inference``: the head trained on all of them, scored with only
  the subset present (the others treated as absent; its probes' stack for that subset where
  it fitted one) and its own thresholds (calibrated on val with every modality), as a
  deployed model meets albums that lack a modality.

Each view's linear probe reads only its own view, so it is fitted once (``Shared.view_fits``)
and every subset's head reuses it; only the heads and their stacks are fitted per subset.

Non-frozen encoders (the audio CNN) train once, alone (stage 1 of `train`), or come from
an earlier run's checkpoint (``encoders_from``; the demo does this so that the embeddings
come straight from `train`'s cache). Metrics are on split=test (val when there is none).
Outputs are written by ``genre_tagger.training.ablation.report``. Under DDP every rank
trains (each head over all ranks' albums); rank 0 alone writes and logs.
"""

from __future__ import annotations

import copy
import functools
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytorch_lightning as pl

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.config import load_config
from genre_tagger.data.dataset import build_loaders
from genre_tagger.errors import UserInputError
from genre_tagger.features import ModalityFeatures
from genre_tagger.metrics import calibrate_thresholds, compute_metrics, per_label_rows
from genre_tagger.models.encoders.base import Encoder
from genre_tagger.models.encoders.views import fit_views
from genre_tagger.models.tagger import GenreTagger, build_tagger
from genre_tagger.tracking import RunTracker
from genre_tagger.training.ablation.report import AT_INFERENCE, SETTINGS_ORDER, TRAINED, ablation_taxonomy, write_outputs
from genre_tagger.training.build import build_parts
from genre_tagger.upgrade import upgrade_config
from genre_tagger.data.modalities import canonical_order, modality_names
from genre_tagger.data.labelled import TrainingData, load_training_data
from genre_tagger.training.embedding import embed_catalog, scores_from_features
from genre_tagger.runs import default_cache_dir, is_global_zero, prepare_run_dir, release_run_dir, say
from genre_tagger.training.strategies import TrainingParts, fit_fusion, pretrain_encoder

SETTINGS = SETTINGS_ORDER  # (TRAINED, AT_INFERENCE)


@dataclass
class Shared:
    """What every run of one ablation shares."""

    data: TrainingData
    features: dict[str, ModalityFeatures]
    encoders: dict[str, Encoder]
    config: dict  # the snapshot each run logs
    parts: TrainingParts
    make_head: Callable[[list[str]], GenreTagger]  # a fresh head over the shared encoders of a subset
    seed: int
    min_positives: int  # calibration
    eval_split: str
    group: str
    output: Path
    progress: bool
    # each view's linear probe, fitted once for all subsets (it reads only its own view)
    view_fits: dict = field(default_factory=dict)


@dataclass
class SubsetResult:
    """One scored (setting, subset): its CSV row, per-label rows and ``scores [N_eval, L]``."""

    row: dict[str, Any]
    per_label: list[dict[str, Any]] = field(default_factory=list)
    scores: np.ndarray | None = None


def subset_name(subset: tuple[str, ...]) -> str:
    return "+".join(subset)


def modality_subsets(modalities: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset, singles first, in canonical order: 3 modalities -> 7 subsets."""
    ordered = canonical_order(modalities)
    return [c for size in range(1, len(ordered) + 1) for c in itertools.combinations(ordered, size)]


def absent_modalities(data: TrainingData, requested: list[str]) -> dict[str, str]:
    """Requested modalities no fusion head could learn from, with the reason why."""
    train = [data.records[i] for i in data.splits["train"]]
    reasons = {}
    for modality in requested:
        if not any(r.has_modality(modality) for r in data.records):
            reasons[modality] = f"no album in the manifest has {modality}"
        elif not any(r.has_modality(modality) for r in train):
            reasons[modality] = f"no training album (split=train) has {modality}"
    return reasons


def pick_eval_split(data: TrainingData) -> str:
    if len(data.splits["test"]):
        return "test"
    say("warning: the manifest has no test split: the ablation reports metrics on val "
        "(the split that also selects epochs and thresholds, so they are optimistic)")
    return "val"


def shared_encoders(
    config: dict, data: TrainingData, modalities: list[str], bundle: TaggerBundle | None,
    tracker_for_stage1: Callable[[list[str]], RunTracker], parts: TrainingParts,
) -> tuple[dict[str, Encoder], dict, dict[str, Any]]:
    """Frozen encoders ``{m: Encoder}`` and loaders for ``modalities``, plus stage-1 results.

    Encoders come from ``bundle`` (a loaded checkpoint) when it has them; the rest are built
    from the config, and the non-frozen ones among those train alone once (stage 1).
    """
    encoders: dict[str, Encoder] = {}
    loaders: dict = {}
    if bundle is not None:
        for modality in modalities:
            if modality in bundle.modalities:
                encoders[modality] = bundle.model.encoders[modality]
                encoders[modality].freeze()
                loaders[modality] = bundle.loaders[modality]
        say(f"reusing the checkpoint's encoders: {', '.join(encoders) or 'none'}")
    missing = [m for m in modalities if m not in encoders]
    stage1: dict[str, Any] = {}
    if missing:
        built = build_tagger(config["model"], missing, len(data.vocabulary))
        loaders.update(build_loaders(config["data"]["loaders"], missing))
        fit_views(built.encoders, loaders, [data.records[i] for i in data.splits["train"]],
                  progress=parts.embedding.progress)
        to_train = [m for m in missing if not built.encoders[m].frozen]
        tracker = tracker_for_stage1(to_train) if to_train else None
        try:
            for modality in to_train:
                stage1[modality] = pretrain_encoder(modality, built, loaders[modality], data, parts, tracker)
        finally:
            if tracker is not None:
                tracker.finish()
        encoders.update({m: built.encoders[m] for m in missing})
    return {m: encoders[m] for m in modalities}, {m: loaders[m] for m in modalities}, stage1


def tagger_for(shared: Shared, subset: tuple[str, ...]) -> GenreTagger:
    """A fresh fusion head over the shared (frozen) encoder objects of ``subset``."""
    return shared.make_head(list(subset))


def score(
    shared: Shared, tagger: GenreTagger, setting: str, subset: tuple[str, ...], thresholds: np.ndarray | None,
) -> tuple[SubsetResult, np.ndarray]:
    """Scores ``tagger`` with only ``subset`` present: the metrics row and the thresholds used.

    ``thresholds`` None: calibrate them on val for this (setting, subset).
    """
    data, rows = shared.data, shared.data.splits
    val_scores = scores_from_features(tagger, shared.features, rows["val"], modalities=list(subset))
    if thresholds is None:
        thresholds = calibrate_thresholds(data.targets[rows["val"]], val_scores, shared.min_positives)
    eval_rows = rows[shared.eval_split]
    eval_scores = scores_from_features(tagger, shared.features, eval_rows, modalities=list(subset))
    eval_targets = data.targets[eval_rows]
    metrics = compute_metrics(eval_targets, eval_scores, thresholds)
    val_auc = compute_metrics(data.targets[rows["val"]], val_scores, thresholds)["macro_roc_auc"]
    with_input = np.zeros(len(eval_rows), dtype=bool)
    for modality in subset:
        with_input |= shared.features[modality].present[eval_rows]
    row = {
        "setting": setting, "modalities": subset_name(subset), "n_modalities": len(subset),
        "split": shared.eval_split, "albums": metrics["n_albums"], "albums_with_input": int(with_input.sum()),
        **{k: metrics[k] for k in ("macro_roc_auc", "micro_roc_auc", "macro_pr_auc", "micro_pr_auc", "micro_f1",
                                   "macro_f1", "coverage_at_1")},
        "labels_evaluated": metrics["n_labels_evaluated"], "val_macro_roc_auc": val_auc,
    }
    per_label = per_label_rows(eval_targets, eval_scores, thresholds, data.vocabulary.names)
    return SubsetResult(row, per_label, eval_scores), thresholds


def train_subset(shared: Shared, subset: tuple[str, ...]) -> tuple[GenreTagger, np.ndarray, SubsetResult]:
    """Stage 2 on ``subset`` alone, as its own tracked run. Returns the head, thresholds, result."""
    name = subset_name(subset)
    pl.seed_everything(shared.seed, workers=True, verbose=False)  # same start for every subset
    tagger = tagger_for(shared, subset)
    config = copy.deepcopy(shared.config)
    config["modalities"] = list(subset)
    config["ablation"] = {"setting": TRAINED, "modalities": name}
    tracker = RunTracker(shared.output, config["logger"], run_name=f"trained-{name}", config=config,
                         group=shared.group, tags=["ablation", TRAINED, *subset], enabled=is_global_zero())
    try:
        clock = time.monotonic()
        # only the full model meets albums with fewer modalities (the at-inference rows)
        full = len(subset) == len(shared.encoders)
        fit_fusion(tagger, shared.features, shared.data, shared.parts, tracker.loggers, shared.view_fits,
                   subset_heads=full)
        seconds = time.monotonic() - clock
        result, thresholds = score(shared, tagger, TRAINED, subset, None)
        result.row["head_training_s"] = round(seconds, 1)
        tracker.log_summary(result.row, prefix=f"{shared.eval_split}/")
    finally:
        tracker.finish()
    return tagger, thresholds, result


def log_summary_run(shared: Shared, rows: list[dict[str, Any]], chart: Path) -> None:
    """One extra W&B run in the group holding the whole table (and the chart)."""
    config = copy.deepcopy(shared.config)
    config["ablation"] = {"setting": "summary"}
    tracker = RunTracker(shared.output, config["logger"], run_name="summary", config=config, group=shared.group,
                         tags=["ablation", "summary", AT_INFERENCE], enabled=is_global_zero())
    try:
        tracker.log_table("ablation", rows)
        for row in rows:
            tracker.log_summary({"macro_roc_auc": row["macro_roc_auc"], "macro_pr_auc": row["macro_pr_auc"]},
                                prefix=f"{row['setting']}/{row['modalities']}/")
        if tracker.wandb_logger is not None and chart.is_file():
            tracker.wandb_logger.log_image(key="ablation_chart", images=[str(chart)])
    finally:
        tracker.finish()


def _auc(row: dict[str, Any]) -> str:
    value = row["macro_roc_auc"]
    return "n/a" if value != value else f"{value:.3f}"  # NaN: no label with both classes


def run_all(shared: Shared, subsets: list[tuple[str, ...]]) -> dict[tuple[str, tuple[str, ...]], SubsetResult]:
    """Train a head per subset (the last one, all modalities, is the full model), then score
    the full model with each subset alone. Progress lines on stderr between runs."""
    results: dict[tuple[str, tuple[str, ...]], SubsetResult] = {}
    for step, subset in enumerate(subsets, start=1):
        tagger, thresholds, result = train_subset(shared, subset)
        results[(TRAINED, subset)] = result
        say(f"[{step}/{len(subsets)}] trained on {subset_name(subset)}: macro ROC-AUC {_auc(result.row)} "
            f"({shared.eval_split})")
    full_model, full_thresholds = tagger, thresholds
    for subset in subsets:
        result, _ = score(shared, full_model, AT_INFERENCE, subset, full_thresholds)
        results[(AT_INFERENCE, subset)] = result
        say(f"      full model, only {subset_name(subset)} at inference: macro ROC-AUC {_auc(result.row)}")
    return results


def prepare(
    output: str | Path, config_files: list[str] | None, wandb_mode: str | None, encoders_from: str | Path | None,
) -> tuple[dict, Path, TaggerBundle | None]:
    """The config (the checkpoint's, when encoders come from one, overlaid by ``config_files``),
    a fresh output folder, and the loaded checkpoint (or None)."""
    out = prepare_run_dir(output)  # refuse an earlier ablation before any slow loading
    bundle = load_checkpoint(encoders_from, for_training=True) if encoders_from is not None else None
    base = upgrade_config(bundle.config) if bundle else None
    config = upgrade_config(load_config(config_files, base=base, upgrade=upgrade_config if base else None))
    if wandb_mode:
        config["logger"]["wandb"]["mode"] = wandb_mode
    return config, out, bundle


def run_ablation(
    manifest: str | Path,
    output: str | Path,
    config_files: list[str] | None = None,
    wandb_mode: str | None = None,
    progress: bool = True,
    encoders_from: str | Path | None = None,
    labels_file: str | Path | None = None,
) -> dict[str, Any]:
    """The whole `ablate` command; returns what ``DIR/ablation.json`` holds.

    ``encoders_from``: a `train` checkpoint whose encoders (and preprocessing, and config,
    overlaid by ``config_files``) to reuse instead of training stage 1 again.
    ``labels_file``: the label list, one per line, as `train --labels` (default: the
    manifest's training labels).
    """
    started = time.monotonic()
    config, out, bundle = prepare(output, config_files, wandb_mode, encoders_from)
    try:
        pl.seed_everything(config["seed"], workers=True, verbose=False)
        data = load_training_data(manifest, labels_file, config["seed"])
        available, absent = usable_modalities(data, config, manifest)
        shared, stage1, timing = _prepare_shared(config, data, available, bundle, out, manifest, progress)
        subsets = modality_subsets(available)
        clock = time.monotonic()
        results = run_all(shared, subsets)
    finally:
        release_run_dir(out)
    # Scoring is milliseconds: this is the fusion-head training of every subset.
    timing["head_training_s_all_runs"] = round(time.monotonic() - clock, 1)
    timing["head_training_s_per_run"] = round(timing["head_training_s_all_runs"] / len(subsets), 1)
    eval_split = shared.eval_split
    summary = {
        "manifest": str(manifest), "output": str(out), "group": shared.group, "split": eval_split,
        "modalities_available": available, "modalities_absent": absent, "encoders_from":
            str(encoders_from) if encoders_from else None, "encoder_pretraining": stage1,
        "presence_rates": {m: float(f.present[data.splits[eval_split]].mean()) for m, f in shared.features.items()},
        "labels": len(data.vocabulary), "albums": {k: int(len(v)) for k, v in data.splits.items()},
        "seconds": round(time.monotonic() - started, 1), "timing": timing,
    }
    if not is_global_zero():  # the other ranks of a DDP run trained with rank 0; it alone writes
        return summary
    report = write_outputs(out, results, subsets, data.vocabulary.names, summary, data.targets[data.splits[eval_split]],
                           taxonomy=ablation_taxonomy(bundle, data.vocabulary.names))  # the checkpoint's tree
    log_summary_run(shared, report["rows"], out / "ablation.png")
    say(f"ablation done in {report['seconds']:.0f} s: {out}/ablation.md, ablation.csv, ablation.png")
    return report


def usable_modalities(data: TrainingData, config: dict, manifest: str | Path) -> tuple[list[str], dict[str, str]]:
    """The requested modalities some training album has, and why the others are skipped."""
    requested = canonical_order(config.get("modalities", modality_names()))
    absent = absent_modalities(data, requested)
    for modality, reason in absent.items():
        say(f"warning: {reason}: skipping every subset that needs {modality}")
    available = [m for m in requested if m not in absent]
    if not available:
        raise UserInputError(f"{manifest}: no modality to ablate ({'; '.join(absent.values())})")
    return available, absent


def _prepare_shared(config: dict, data: TrainingData, available: list[str], bundle: TaggerBundle | None, out: Path,
                    manifest: str | Path, progress: bool) -> tuple[Shared, dict[str, Any], dict[str, float]]:
    """Encoders (from the checkpoint or stage 1) and the catalog's embeddings, shared by every run."""
    eval_split = pick_eval_split(data)
    group = f"ablation-{out.resolve().name}-{time.strftime('%Y%m%d-%H%M%S')}"
    parts = build_parts(config, data.targets[data.splits["train"]], default_cache_dir(config["data"].get("cache_dir"), manifest), progress)

    def stage1_tracker(modalities: list[str]) -> RunTracker:
        return RunTracker(out, config["logger"], run_name="encoders", config=config, group=group,
                          tags=["ablation", "encoder_pretraining", *modalities], enabled=is_global_zero())

    clock = time.monotonic()
    encoders, loaders, stage1 = shared_encoders(config, data, available, bundle, stage1_tracker, parts)
    timing = {"encoder_training_s": round(time.monotonic() - clock, 1)}
    clock = time.monotonic()
    say("embedding the catalog with the frozen encoders (cached)")
    embedding_s: dict[str, float] = {}
    features = embed_catalog(encoders, loaders, data.records, parts.embedding, embedding_s)
    timing["embedding_s"] = round(time.monotonic() - clock, 1)
    timing.update({f"embedding_{m}_s": round(v, 1) for m, v in embedding_s.items()})
    make_head = functools.partial(build_tagger, config["model"], n_labels=len(data.vocabulary), encoders=encoders)
    shared = Shared(data, features, encoders, config, parts, make_head, config["seed"],
                    config["calibration"]["min_positives"], eval_split, group, out, progress)
    return shared, stage1, timing
