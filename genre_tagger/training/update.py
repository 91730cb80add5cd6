"""`genre-tagger update`: new or relabelled albums and new labels taken into a trained model.

The old checkpoint's encoders (frozen, untouched) and preprocessing embed the catalog
through the embedding cache; the fusion head, the probes and the thresholds refit on the
cached embeddings (the staged path of `train`, stage 2 only), over the old labels plus the
labels the manifest's training albums bring. The taxonomy, if any, is kept.

The run folder gets what `train` writes, plus ``update_report.md``: the old and the new
model on the same evaluation albums (split=test, else val), label by label. When the new
model's macro ROC-AUC over the old labels is more than ``tolerance`` below the old model's,
``model.ckpt`` is not written and the command exits 2 (unless ``force``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from sklearn.metrics import roc_auc_score

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint, save_checkpoint
from genre_tagger.config import import_object
from genre_tagger.data.labelled import TrainingData, load_training_data
from genre_tagger.errors import UserInputError
from genre_tagger.labels import LabelVocabulary
from genre_tagger.metrics import compute_metrics, evaluable_labels, macro_roc_auc, per_label_rows
from genre_tagger.models.tagger import build_tagger
from genre_tagger.runs import default_cache_dir, is_global_zero, prepare_run_dir, release_run_dir, say
from genre_tagger.taxonomy import Taxonomy
from genre_tagger.tracking import RunTracker
from genre_tagger.training.build import build_parts
from genre_tagger.training.run import calibrate_and_score
from genre_tagger.training.run_files import write_run_files
from genre_tagger.training.strategies import StagedTraining
from genre_tagger.upgrade import upgrade_config

# Macro ROC-AUC over the old labels the new model may lose before it is refused: the 95th
# percentile of the gap between two refits of the same data on the demo's catalog (39 test
# albums; benchmarks/update.py). Larger catalogs have less noise.
TOLERANCE = 0.025


def update(checkpoint: str | Path, manifest: str | Path, output: str | Path, force: bool = False,
           tolerance: float = TOLERANCE, progress: bool = True, seed: int | None = None) -> dict[str, Any]:
    """The whole `update` command; returns the metrics written to ``metrics.json``. Raises
    ``UserInputError`` (exit 2) after writing everything but ``model.ckpt`` when the new
    model is worse on the old labels beyond ``tolerance`` and ``force`` is not set.
    ``seed``: the refit's seed (default: the checkpoint's)."""
    old = load_checkpoint(checkpoint, for_training=True)  # its albums read as `train` read them
    if not hasattr(old.model, "logits_from_embeddings"):  # a pretrained zero-shot tagger has no head
        raise UserInputError(f"{checkpoint}: only a checkpoint of `train` can be updated")
    config = upgrade_config(copy.deepcopy(old.config))
    if seed is not None:
        config["seed"] = int(seed)
    run_dir = prepare_run_dir(output)
    try:
        return _update(old, manifest, run_dir, config, force, tolerance, progress)
    finally:
        release_run_dir(run_dir)


def merged_data(manifest: str | Path, old_labels: list[str], seed: int) -> tuple[TrainingData, list[str]]:
    """The manifest's labelled albums over the old labels plus the new ones its training
    albums bring (in order of appearance); ``(data, new labels)``."""
    data = load_training_data(manifest, None, seed)
    new = [name for name in data.vocabulary.names if name not in set(old_labels)]
    vocabulary = LabelVocabulary(list(old_labels) + new)
    targets, _ = vocabulary.encode(data.records)
    return TrainingData(data.records, vocabulary, targets, data.splits), new


def _update(old: TaggerBundle, manifest: str | Path, run_dir: Path, config: dict, force: bool, tolerance: float,
            progress: bool) -> dict[str, Any]:
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    data, new_labels = merged_data(manifest, old.labels, config["seed"])
    say(f"updating {len(old.labels)} labels (+{len(new_labels)} new) on {len(data.splits['train'])} train albums; "
        "encoders kept frozen")
    writer = is_global_zero()
    tracker = RunTracker(run_dir, config["logger"], run_name=run_dir.name, config=config,
                         tags=["update", *old.modalities], enabled=writer)
    try:
        encoders = dict(old.model.encoders)
        for encoder in encoders.values():
            encoder.freeze()
        tagger = build_tagger(config["model"], old.modalities, len(data.vocabulary), encoders=encoders)
        taxonomy = Taxonomy(data.vocabulary.names, old.taxonomy.links) if old.taxonomy else None
        cache_dir = default_cache_dir(config["data"].get("cache_dir"), manifest)
        parts = build_parts(config, data.targets[data.splits["train"]], cache_dir, progress, tracker.loggers)
        fitted = StagedTraining().fit(tagger, old.loaders, data, parts, tracker)
        thresholds, metrics = calibrate_and_score(fitted, data, config["calibration"]["min_positives"], tracker,
                                                  taxonomy)
        tagger.taxonomy = taxonomy
        bundle = TaggerBundle(tagger, old.loaders, data.vocabulary.names, thresholds, copy.deepcopy(config))
        comparison = compare(old, bundle, data, cache_dir, progress)
        verdict = comparison["old_labels_new"] >= comparison["old_labels_old"] - tolerance
        metrics.update(modalities=old.modalities, labels=len(data.vocabulary), new_labels=new_labels,
                       best_val_macro_roc_auc=fitted.best_val, presence_rates=fitted.presence,
                       training_mode="update", update={**{k: v for k, v in comparison.items() if k != "rows"},
                                                       "tolerance": tolerance, "accepted": bool(verdict),
                                                       "forced": bool(force and not verdict)})
        if writer:
            for name, path in (config.get("after_training") or {}).items():
                extra, metrics[name] = import_object(path)(bundle, data.records, data.splits, cache_dir, progress)
                bundle.extra.update(extra)
            write_run_files(run_dir, config, bundle.labels, bundle.thresholds, metrics)
            if taxonomy:
                (run_dir / "taxonomy.tsv").write_text(taxonomy.to_tsv(), encoding="utf-8")
            (run_dir / "update_report.md").write_text(report(comparison, new_labels, tolerance, verdict, force),
                                                      encoding="utf-8")
            if verdict or force:
                save_checkpoint(run_dir / "model.ckpt", bundle)
    finally:
        tracker.finish()
    if not verdict and not force:
        raise UserInputError(refusal(comparison, tolerance, run_dir))
    return metrics


def refusal(comparison: dict[str, Any], tolerance: float, run_dir: Path) -> str:
    return (f"the updated model is worse on the old labels: macro ROC-AUC {comparison['old_labels_old']:.4f} -> "
            f"{comparison['old_labels_new']:.4f} on {comparison['n_albums']} {comparison['split']} albums, beyond "
            f"the tolerance of {tolerance:g}; model.ckpt not written (see {run_dir / 'update_report.md'}; "
            "--force writes it anyway)")


def compare(old: TaggerBundle, new: TaggerBundle, data: TrainingData, cache_dir: Path,
            progress: bool) -> dict[str, Any]:
    """Old and new model on the same evaluation albums (split=test, else val): macro ROC-AUC
    over the old labels (evaluable ones) for both, and one row per label."""
    split = "test" if len(data.splits["test"]) else "val"
    rows = data.splits[split]
    records = [data.records[i] for i in rows]
    features = new.embed(records, cache_dir, num_workers=0, progress=progress)  # same encoders: the old's too
    old_scores, new_scores = old.scores(features), new.scores(features)
    targets = data.targets[rows]
    n_old = len(old.labels)
    old_targets = targets[:, :n_old]
    old_rows = per_label_rows(old_targets, old_scores, np.asarray(old.thresholds), old.labels)
    new_rows = per_label_rows(targets, new_scores, np.asarray(new.thresholds), new.labels)
    table = []
    for j, row in enumerate(new_rows):
        before = old_rows[j] if j < n_old else None
        table.append({"label": row["label"], "positives": row["positives"], "new_label": before is None,
                      "old_roc_auc": before["roc_auc"] if before else float("nan"), "new_roc_auc": row["roc_auc"],
                      "old_f1": before["f1"] if before else float("nan"), "new_f1": row["f1"]})
    evaluable = evaluable_labels(old_targets)
    train_albums = data.targets[data.splits["train"]].sum(axis=0)
    fresh = [reliability(new.labels[j], int(train_albums[j]), targets[:, j], new_scores[:, j], split)
             for j in range(n_old, len(new.labels))]
    return {"split": split, "n_albums": int(len(rows)), "n_old_labels_evaluated": int(len(evaluable)),
            "new_label_reliability": fresh,
            "old_labels_old": macro_roc_auc(old_targets, old_scores),
            "old_labels_new": macro_roc_auc(old_targets, new_scores[:, :n_old]),
            "old_model": compute_metrics(old_targets, old_scores, np.asarray(old.thresholds), old.taxonomy),
            "rows": table}


def reliability(label: str, train_albums: int, targets: np.ndarray, scores: np.ndarray, split: str,
                rounds: int = 500, level: float = 0.9) -> dict[str, Any]:
    """How far a new label's scores can be trusted: its ROC-AUC on the evaluation albums
    (``targets``, ``scores``: ``[N]``) with a bootstrap interval over those albums, and a verdict:
    better than chance when the whole interval is above 0.5."""
    targets = np.asarray(targets, dtype=np.int64)
    positives = int(targets.sum())
    out: dict[str, Any] = {"label": label, "train_albums": train_albums, "eval_positives": positives,
                           "roc_auc": None, "interval": [None, None]}  # None, not NaN: metrics.json stays JSON
    if positives == 0 or positives == len(targets):
        out["verdict"] = f"not measurable: no {'positive' if positives == 0 else 'negative'} among the {split} albums"
        return out
    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(rounds):
        picked = rng.integers(0, len(targets), len(targets))
        if 0 < targets[picked].sum() < len(picked):
            aucs.append(roc_auc_score(targets[picked], scores[picked]))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    out.update(roc_auc=float(roc_auc_score(targets, scores)), interval=[float(low), float(high)])
    out["verdict"] = ("better than chance" if low > 0.5 else "not distinguishable from chance") + \
        f" ({100 * level:.0f} % interval over {len(targets)} {split} albums with {positives} positives)"
    return out


def _cell(value: float | None) -> str:
    return "" if value is None or value != value else f"{value:.3f}"


def report(comparison: dict[str, Any], new_labels: list[str], tolerance: float, accepted: bool, force: bool) -> str:
    """``update_report.md``: the verdict, then the old and new model label by label."""
    old, new = comparison["old_labels_old"], comparison["old_labels_new"]
    if accepted:
        verdict = "accepted: the new model is not worse on the old labels beyond the tolerance"
    else:
        verdict = ("refused: the new model is worse on the old labels beyond the tolerance; "
                   + ("model.ckpt written anyway (--force)" if force else "model.ckpt not written"))
    lines = ["# Update report", "",
             f"- evaluation albums: {comparison['n_albums']} (split={comparison['split']}), the same for both models",
             f"- old labels evaluated: {comparison['n_old_labels_evaluated']}; new labels: "
             + (", ".join(new_labels) if new_labels else "none"),
             f"- macro ROC-AUC over the old labels: old model {old:.4f}, new model {new:.4f} "
             f"(change {new - old:+.4f}; tolerance {tolerance:g})",
             f"- verdict: {verdict}", "",
             "| label | positives | old ROC-AUC | new ROC-AUC | change | old F1 | new F1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    fresh = comparison.get("new_label_reliability") or []
    if fresh:
        at = len(lines) - 2  # before the label-by-label table
        lines[at:at] = ["## New labels", "", "| label | training albums | ROC-AUC | 90 % interval | reliability |",
                        "|---|---:|---:|---|---|"] + [
            f"| {r['label']} | {r['train_albums']} | {_cell(r['roc_auc'])} | "
            f"{_cell(r['interval'][0])} to {_cell(r['interval'][1])} | {r['verdict']} |" for r in fresh] + [""]
    for row in comparison["rows"]:
        change = row["new_roc_auc"] - row["old_roc_auc"]
        name = row["label"] + (" (new)" if row["new_label"] else "")
        lines.append(f"| {name} | {row['positives']} | {_cell(row['old_roc_auc'])} | {_cell(row['new_roc_auc'])} | "
                     f"{'' if change != change else f'{change:+.3f}'} | {_cell(row['old_f1'])} | "
                     f"{_cell(row['new_f1'])} |")
    return "\n".join(lines) + "\n"
