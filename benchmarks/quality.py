"""Quality benchmark: fused vs single-modality test metrics on a synthetic
catalog, against the simple-features reference computed in the same run on the same split.

    .venv/bin/python benchmarks/quality.py [--albums 3000] [--labels 250] [--seed 0]
        [--generator synthetic|synthetic2|synthetic3] [--preset demo] [--config YAML ...] [--reuse-cache]
        [--catalog-dir DIR] [--name SUFFIX] [--no-reference] [--ablation DIR]

``--generator synthetic2`` uses the second generator family (genre_tagger.data.synthetic2,
40 genres; ``--labels`` is its genre count), ``--generator synthetic3`` the third
(genre_tagger.data.synthetic3: a genre tree, evidence in song sections of 30 s tracks, lettering-like
covers, texts with genre words only); ``--preset demo`` is the demo's catalog
(400 albums, 50 labels, 8 s tracks, seed 0). The reference (genre_tagger.baselines: log-mel
band statistics + onset autocorrelation, colour/hue/gradient-orientation statistics, tf-idf;
one-vs-rest logistic regression, C chosen on val) sees the same records, labels and split;
the section printed ends with a plain verdict naming every column where the model loses and
the model minus the reference per column with a 90 % paired bootstrap interval over the
test albums (`ablate`'s ``scores.npz`` against the reference's test probabilities).

Writes a catalog under benchmarks/_work/quality_<albums>_<labels>_<seed>/ (reused when it
exists; ``--catalog-dir`` or ``$GENRE_TAGGER_CATALOGS`` puts the catalogs elsewhere, e.g. in
a folder shared by several checkouts; outputs stay under benchmarks/_work), runs
`genre-tagger ablate` on it with the default config (stage 1 audio CNN, frozen
EfficientNet-Lite0 and MiniLM, cached embeddings, one fusion head per modality subset),
(or reads an earlier `ablate` output on the same catalog, ``--ablation DIR``)
and prints a markdown section with the test metrics of the fused model and of
each single modality, plus the time of each stage: audio-encoder training, embedding
extraction per modality, and fusion-head training per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genre_tagger.baselines import comparison_table, model_rows_from_ablation
from genre_tagger.baselines.bench import reference_for_manifest
from genre_tagger.training.ablation import run_ablation
from genre_tagger.training.ablation.report import bootstrap_gain
from genre_tagger.data.synthetic import write_catalog
from genre_tagger.data.synthetic2 import write_catalog2
from genre_tagger.data.synthetic3 import write_catalog3

WORK = Path(__file__).resolve().parent / "_work"
CATALOGS = Path(os.environ.get("GENRE_TAGGER_CATALOGS") or WORK)


def catalog(albums: int, labels: int, seed: int, track_seconds: float, generator: str = "synthetic",
            work: Path = CATALOGS) -> Path:
    folder = work / f"{'quality' if generator == 'synthetic' else generator}_{albums}_{labels}_{seed}_{track_seconds:g}s"
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        started = time.monotonic()
        if generator == "synthetic2":
            write_catalog2(folder, n_albums=albums, seed=seed, n_genres=labels, track_seconds=track_seconds)
        elif generator == "synthetic3":
            write_catalog3(folder, n_albums=albums, seed=seed, n_labels=labels, track_seconds=track_seconds)
        else:
            write_catalog(folder, n_albums=albums, seed=seed, n_labels=labels, track_seconds=track_seconds)
        print(f"catalog written in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return manifest


def section(report: dict, albums: int, labels: int, seed: int, command: str, generator: str = "synthetic") -> str:
    rows = [r for r in report["rows"] if r["setting"] == "trained_on_subset"]
    timing = report.get("timing") or report.get("summary", {}).get("timing", {})
    lines = [
        f"Catalog: {albums} albums of generator `{generator}`, {labels} labels, seed {seed}, default missing rates; "
        f"test split {rows[0]['albums']} albums. Machine: {torch.get_num_threads()} CPU threads, no GPU.",
        f"Command: `{command}`", "",
        "| trained on | macro ROC-AUC | macro PR-AUC | micro F1 | coverage@1 | head training (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['modalities']} | {row['macro_roc_auc']:.3f} | {row['macro_pr_auc']:.3f} | "
                     f"{row['micro_f1']:.3f} | {row['coverage_at_1']:.3f} | {row.get('head_training_s', float('nan')):.1f} |")
    lines += ["", "Stage times (s): " + ", ".join(
        f"{name} {value:.0f}" for name, value in timing.items() if isinstance(value, (int, float)))]
    return "\n".join(lines)


def versus_reference(scores_file: Path, report: dict, reference) -> dict[str, tuple[float, float, float]]:
    """Per column (each modality, fused): the model trained on it minus the reference, test macro
    ROC-AUC, with a 90 % paired bootstrap interval over the same test albums (same split and order)."""
    stored = np.load(scores_file)
    targets, out = stored["targets"], {}
    for column, row in model_rows_from_ablation(report).items():
        key = f"trained_on_subset/{row['modalities']}"
        if column not in reference.scores or key not in stored:
            continue
        model, ref = stored[key], reference.scores[column]
        if model.shape != ref.shape:
            raise SystemExit(f"{column}: model scores {model.shape} and reference scores {ref.shape} differ")
        low, high = bootstrap_gain(targets, model, ref)
        out[column] = (row["macro_roc_auc"] - reference.metrics[column]["macro_roc_auc"], low, high)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--albums", type=int, default=3000)
    parser.add_argument("--labels", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--track-seconds", type=float, default=None,
                        help="track length of a new catalog (default 6; 30 for synthetic3, whose evidence sits in sections)")
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--generator", choices=("synthetic", "synthetic2", "synthetic3"), default="synthetic")
    parser.add_argument("--preset", choices=("demo",), default=None,
                        help="demo: the demo's catalog (400 albums, 50 labels, 8 s tracks, seed 0)")
    parser.add_argument("--reuse-cache", action="store_true",
                        help="use the catalog's own embedding cache (faster re-runs; embedding times not measured)")
    parser.add_argument("--name", default="", help="suffix of the output folder (to keep several configs' runs)")
    parser.add_argument("--manifest", default=None,
                        help="an existing catalog's manifest instead of writing one (e.g. `synth --albums 600 --seed 23`); "
                             "give its --albums/--labels/--seed for the report")
    parser.add_argument("--catalog-dir", type=Path, default=CATALOGS,
                        help="folder of the catalogs (default: $GENRE_TAGGER_CATALOGS or benchmarks/_work)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the simple-features reference (when another run on the same split gave it)")
    parser.add_argument("--ablation", type=Path, default=None,
                        help="an `ablate` output folder on this catalog to compare instead of running `ablate` again "
                             "(its ablation.json and scores.npz)")
    args = parser.parse_args()
    if args.preset == "demo":
        args.albums, args.labels, args.track_seconds, args.seed, args.generator = 400, 50, 8.0, 0, "synthetic"
    if args.track_seconds is None:
        args.track_seconds = 30.0 if args.generator == "synthetic3" else 6.0
    manifest = Path(args.manifest) if args.manifest else catalog(args.albums, args.labels, args.seed,
                                                                  args.track_seconds, args.generator, args.catalog_dir)
    output = WORK / f"{args.generator}_ablation_{args.albums}_{args.labels}_{args.seed}{args.name}"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    overlays = list(args.config)
    if not args.reuse_cache:
        # A fresh embedding cache inside the output, so that the embedding time is measured
        # (the catalog's own cache would make a re-run near instant).
        fresh_cache = output / "cache_overlay.yaml"
        fresh_cache.write_text(f"data: {{cache_dir: {json.dumps(str(output / 'cache'))}}}\n", encoding="utf-8")
        overlays.append(str(fresh_cache))
    ablation = args.ablation or output / "ablation"
    if args.ablation is None:
        report = run_ablation(manifest, ablation, config_files=overlays, wandb_mode="disabled", progress=False)
    else:
        report = json.loads((ablation / "ablation.json").read_text(encoding="utf-8"))
    command = " ".join(["python benchmarks/quality.py", *sys.argv[1:]])
    text = section(report, args.albums, args.labels, args.seed, command, args.generator)
    if not args.no_reference:
        clock = time.monotonic()
        reference = reference_for_manifest(manifest, overlays)
        reference_s = time.monotonic() - clock
        table, losses = comparison_table(model_rows_from_ablation(report), reference)
        text += (f"\n\nModel (`ablate`, trained on each subset; fused = all modalities) vs the simple-features "
                 f"reference (same split; reference features + LR fits {reference_s:.0f} s; C chosen: "
                 f"{reference.chosen_c}):\n\n" + table)
        intervals = versus_reference(ablation / "scores.npz", report, reference)
        text += "\n\nModel minus reference, 90 % paired bootstrap over the test albums: " + "; ".join(
            f"{name} {gap:+.3f} [{low:+.3f}, {high:+.3f}]" for name, (gap, low, high) in intervals.items())
        report["reference"] = {"metrics": reference.metrics, "chosen_c": reference.chosen_c, "losses": losses,
                               "model_minus_reference_90": intervals}
    (output / "quality.md").write_text(text + "\n", encoding="utf-8")
    (output / "quality.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
