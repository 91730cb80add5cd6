"""Real text: the text branch against tf-idf and frozen-MiniLM baselines on MusicCaps captions.

The bar: the default text encoder must beat a tf-idf + logistic-regression baseline on a
real multi-label caption set. The captions (1,766 MusicCaps expert captions, 52 AudioSet
genres, 1-8 per caption; a text-only album manifest with no split) are read at run time
from ``--captions``; nothing of them is copied into the repository.

Per seed, ONE random split (70/15/15 by default) is written as a manifest copy with a
``split`` field into ``--workdir``; every method then sees the same train / val / test
captions and the same label list (the genres of the train split, as ``train`` builds it):

    tfidf      tf-idf of 1-2-grams (sublinear tf) + one-vs-rest logistic regression,
               C tuned on val macro ROC-AUC, fitted on train
    minilm_lr  frozen all-MiniLM-L6-v2, mean-pooled (the project's own TextLoader +
               TransformerTextEncoder, so exactly the embeddings the pipeline caches),
               L2-normalised + one-vs-rest logistic regression, C tuned on val
    ours       ``genre_tagger.training.train(modalities="text")`` with configs/default.yaml
               (frozen MiniLM + projection + fusion + head on cached embeddings)
    ours_views the same with ``--config model/views.yaml`` (the from-scratch MelCNN as the
               learned audio view; on captions alone the same text model as ``ours``)
    ours_finetune  the same with ``--config model/text_finetune.yaml`` (stage 1 fine-tunes
               MiniLM on the captions, then the head trains on its embeddings)

Metrics on the test split (genre_tagger.metrics.compute_metrics): macro ROC-AUC and macro
PR-AUC over labels with at least one positive and one negative test caption, and micro F1
at per-label thresholds calibrated on val (``calibrate_thresholds``, as ``train`` does).
Seconds are wall-clock for fitting + scoring (the embedding cache is shared, so
``minilm_lr``'s time includes embedding every caption once and ``ours`` reuses it; on a
shared CPU, compare times only within one run).

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/real_text.py [--captions PATH] [--workdir DIR]
        [--seeds 0 1 2] [--methods tfidf,minilm_lr,ours,ours_finetune]
        [--variant NAME=overlay.yaml[+overlay2.yaml]] ...

``--variant`` adds a pipeline run with extra config overlays (paths, or names under
configs/). Results go to ``<workdir>/results.json`` (appended per seed and method, so an
interrupted run resumes) and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from genre_tagger.runs.ranks import say

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_CAPTIONS = Path("/work/shared/realworld/text/musiccaps_captions.jsonl")
DEFAULT_METHODS = "tfidf,minilm_lr,ours,ours_views"
PIPELINE_VARIANTS = {"ours": [], "ours_views": ["model/views.yaml"],
                     "ours_finetune": ["model/text_finetune.yaml"]}
REFERENCES = ("tfidf", "minilm_lr")  # tfidf is the simple-features reference of genre_tagger.baselines
SHOWN = ("macro_roc_auc", "macro_pr_auc", "micro_f1")
TFIDF_C = (1.0, 3.0, 10.0, 30.0, 100.0)
EMBEDDING_C = (0.3, 1.0, 3.0, 10.0, 30.0)


# --------------------------------------------------------------------------- split


def read_captions(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def split_rows(rows: list[dict], seed: int, fractions: tuple[float, float, float]) -> list[dict]:
    """A copy of ``rows`` with a seeded random ``split`` (train / val / test) on each."""
    order = np.random.default_rng(seed).permutation(len(rows))
    n_train = int(round(fractions[0] * len(rows)))
    n_val = int(round(fractions[1] * len(rows)))
    names = np.empty(len(rows), dtype=object)
    names[order[:n_train]] = "train"
    names[order[n_train:n_train + n_val]] = "val"
    names[order[n_train + n_val:]] = "test"
    return [{**row, "split": str(names[i])} for i, row in enumerate(rows)]


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


class Split:
    """The records of one seeded manifest, its label list (train genres) and row indices."""

    def __init__(self, manifest: Path):
        from genre_tagger.data.manifest import read_manifest
        from genre_tagger.labels import LabelVocabulary

        self.manifest = manifest
        self.records, _ = read_manifest(manifest)
        self.vocabulary = LabelVocabulary.from_records([r for r in self.records if r.split == "train"])
        self.targets, _ = self.vocabulary.encode(self.records)
        self.rows = {name: np.array([i for i, r in enumerate(self.records) if r.split == name])
                     for name in ("train", "val", "test")}
        self.texts = np.array([" ".join(r.texts) for r in self.records], dtype=object)

    def y(self, part: str) -> np.ndarray:
        return self.targets[self.rows[part]].astype(np.int64)


# --------------------------------------------------------------------------- evaluation


def evaluate(split: Split, val_scores: np.ndarray, test_scores: np.ndarray) -> dict:
    """Test metrics at thresholds calibrated on val, exactly as ``train`` reports them."""
    from genre_tagger.metrics import calibrate_thresholds, compute_metrics

    thresholds = calibrate_thresholds(split.y("val"), val_scores)
    return compute_metrics(split.y("test"), test_scores, thresholds)


def macro_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    from genre_tagger.metrics import macro_roc_auc

    return macro_roc_auc(targets, scores)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logistic_regression(split: Split, features, grid: tuple[float, ...]) -> tuple[dict, dict]:
    """One-vs-rest LR per C on train; C chosen as the simple-features reference chooses it
    (``baselines.reference.select_c``: val, with out-of-fold training scores on small
    splits, the model's probes' protocol); the chosen C scores test."""
    from genre_tagger.baselines.reference import select_c

    rows = np.concatenate([split.rows["train"], split.rows["val"]])
    targets = np.concatenate([split.y("train"), split.y("val")])
    n_train = len(split.rows["train"])
    c, model, val_scores, tried = select_c(features[rows], targets, np.arange(n_train),
                                           np.arange(n_train, len(rows)), grid)
    metrics = evaluate(split, sigmoid(val_scores), sigmoid(model.decision_function(features[split.rows["test"]])))
    return metrics, {"C": c, "selection_macro_roc_auc_by_C": tried}


def run_tfidf(split: Split, workdir: Path) -> tuple[dict, dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    vectorizer.fit(split.texts[split.rows["train"]])
    return logistic_regression(split, vectorizer.transform(split.texts), TFIDF_C)


def frozen_minilm_embeddings(split: Split, cache_dir: Path) -> np.ndarray:
    """``[N, 384]`` mean-pooled MiniLM embeddings of every caption, through the project's
    default TextLoader + frozen TransformerTextEncoder and its embedding cache (shared with
    the pipeline runs)."""
    from genre_tagger.config import load_config, instantiate
    from genre_tagger.models.encoders.base import build_encoder
    from genre_tagger.features import encoder_fingerprint, extract_features

    config = load_config()
    loader = instantiate(config["data"]["loaders"]["text"])
    spec = config["model"]["encoders"]["text"]
    if spec["class_path"].endswith("MultiView"):  # the default's text views: MiniLM is the learned one
        spec = spec["init_args"]["views"]["learned"]
    encoder = build_encoder(spec)
    features = extract_features(
        split.records, loader, encoder, cache_dir,
        batch_size=config["data"]["batch_size"], num_workers=0, progress=False)
    return features.embeddings


def run_minilm_lr(split: Split, workdir: Path) -> tuple[dict, dict]:
    embeddings = frozen_minilm_embeddings(split, workdir / "cache")
    embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    return logistic_regression(split, embeddings, EMBEDDING_C)


def run_pipeline(split: Split, workdir: Path, name: str, overlays: list[str], seed: int) -> tuple[dict, dict]:
    """``train(modalities="text")`` on the seeded manifest: default config + ``overlays``;
    the common overlay only points the embedding cache into the workdir, sets the seed and
    turns logging off."""
    import yaml

    from genre_tagger.training import train

    common = workdir / f"seed{seed}" / "bench_overlay.yaml"
    common.write_text(yaml.safe_dump({
        "seed": seed, "data": {"cache_dir": str(workdir / "cache")},
        "logger": {"wandb": {"mode": "disabled"}, "csv": False}}), encoding="utf-8")
    run_dir = workdir / f"seed{seed}" / f"run_{name}"
    if run_dir.exists():  # a re-run replaces an interrupted or older run of this variant
        import shutil

        shutil.rmtree(run_dir)
    metrics = train(split.manifest, run_dir, modalities="text", config_files=[*overlays, str(common)],
                    wandb_mode="disabled", progress=False)
    return metrics["test"], {"overlays": overlays, "best_val_macro_roc_auc": metrics["best_val_macro_roc_auc"],
                             "encoder_pretraining": metrics.get("encoder_pretraining", {}), "run_dir": str(run_dir)}


# --------------------------------------------------------------------------- report


def load_results(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def table(results: list[dict], methods: list[str]) -> str:
    seeds = sorted({r["seed"] for r in results})
    lines = [f"| method | macro ROC-AUC | macro PR-AUC | micro F1 | seconds | seeds ({', '.join(map(str, seeds))}) |",
             "|---|---|---|---|---|---|"]
    for method in methods:
        rows = [r for r in results if r["method"] == method]
        if not rows:
            continue
        cells = []
        for key in (*SHOWN, "seconds"):
            values = np.array([r["metrics"][key] if key != "seconds" else r["seconds"] for r in rows], dtype=float)
            digits = 0 if key == "seconds" else 3
            cells.append(f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}" if len(values) > 1
                         else f"{values.mean():.{digits}f}")
        per_seed = ", ".join(f"{r['metrics']['macro_roc_auc']:.3f}" for r in sorted(rows, key=lambda r: r["seed"]))
        lines.append(f"| {method} | {' | '.join(cells)} | {per_seed} |")
    return "\n".join(lines)


def verdict(results: list[dict], methods: list[str]) -> str:
    """Per pipeline method: the seeds where it does not beat every reference (plainly)."""
    lines = []
    for method in [m for m in methods if m not in REFERENCES]:
        losses = []
        for row in [r for r in results if r["method"] == method]:
            for reference in REFERENCES:
                other = [r for r in results if r["method"] == reference and r["seed"] == row["seed"]]
                if other and row["metrics"]["macro_roc_auc"] <= other[0]["metrics"]["macro_roc_auc"]:
                    losses.append(f"seed {row['seed']} vs {reference}")
        lines.append(f"- {method}: " + ("beats tf-idf + LR and MiniLM + LR on every seed" if not losses
                                        else "**does NOT beat: " + ", ".join(losses) + "**"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--captions", type=Path, default=DEFAULT_CAPTIONS)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/genre_tagger_real_text"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs=3, default=(0.7, 0.15, 0.15))
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS})")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=overlay[+overlay...]: an extra pipeline run with these config overlays")
    parser.add_argument("--rerun", action="store_true", help="recompute methods already in results.json")
    args = parser.parse_args(argv)

    variants = dict(PIPELINE_VARIANTS)
    for spec in args.variant:
        name, _, overlays = spec.partition("=")
        variants[name] = [o for o in overlays.split("+") if o]
    methods = [m for m in args.methods.split(",") if m]
    methods += [name for name in variants if name not in methods and name not in PIPELINE_VARIANTS]
    unknown = [m for m in methods if m not in ("tfidf", "minilm_lr") and m not in variants]
    if unknown:
        parser.error(f"unknown method(s): {', '.join(unknown)}")

    args.workdir.mkdir(parents=True, exist_ok=True)
    results_path = args.workdir / "results.json"
    results = load_results(results_path)
    rows = read_captions(args.captions)
    for seed in args.seeds:
        manifest = args.workdir / f"seed{seed}" / "manifest.jsonl"
        write_jsonl(split_rows(rows, seed, tuple(args.fractions)), manifest)
        split = Split(manifest)
        sizes = {p: int(len(split.rows[p])) for p in ("train", "val", "test")}
        say(f"seed {seed}: {sizes} captions, {len(split.vocabulary)} labels")
        for method in methods:
            done = [r for r in results if r["seed"] == seed and r["method"] == method]
            if done and not args.rerun:
                say(f"  {method}: already in {results_path}")
                continue
            start = time.perf_counter()
            if method == "tfidf":
                metrics, info = run_tfidf(split, args.workdir)
            elif method == "minilm_lr":
                metrics, info = run_minilm_lr(split, args.workdir)
            else:
                metrics, info = run_pipeline(split, args.workdir, method, variants[method], seed)
            seconds = time.perf_counter() - start
            say(f"  {method}: " + ", ".join(f"{k} {metrics[k]:.4f}" for k in SHOWN) + f" ({seconds:.0f} s)")
            results = [r for r in load_results(results_path) if not (r["seed"] == seed and r["method"] == method)]
            results.append({"seed": seed, "method": method, "sizes": sizes, "metrics": metrics,
                            "seconds": seconds, "info": info})
            results_path.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    shown = [r for r in results if r["seed"] in args.seeds]
    every = methods + [m for m in sorted({r["method"] for r in shown}) if m not in methods]
    print(table(shown, every))
    print()
    print(verdict(shown, every))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
