"""Quality benchmark (issue 3): fused vs single-modality test metrics on a synthetic catalog.

    .venv/bin/python benchmarks/quality.py [--albums 3000] [--labels 250] [--seed 0]

Writes a catalog under benchmarks/_work/quality_<albums>_<labels>_<seed>/ (reused when it
exists), runs `genre-tagger ablate` on it with the default config (stage 1 audio CNN,
frozen EfficientNet-Lite0 and MiniLM, cached embeddings, one fusion head per modality
subset), and prints a markdown section with the test metrics of the fused model and of
each single modality, plus the time of each stage: audio-encoder training, embedding
extraction per modality, and fusion-head training per run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from genre_tagger.training.ablation import run_ablation
from genre_tagger.data.synthetic import write_catalog

WORK = Path(__file__).resolve().parent / "_work"


def catalog(albums: int, labels: int, seed: int, track_seconds: float) -> Path:
    folder = WORK / f"quality_{albums}_{labels}_{seed}"
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        started = time.monotonic()
        write_catalog(folder, n_albums=albums, seed=seed, n_labels=labels, track_seconds=track_seconds)
        print(f"catalog written in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return manifest


def section(report: dict, albums: int, labels: int, seed: int, command: str) -> str:
    rows = [r for r in report["rows"] if r["setting"] == "trained_on_subset"]
    timing = report.get("timing") or report.get("summary", {}).get("timing", {})
    lines = [
        f"Catalog: {albums} synthetic albums, {labels} labels, seed {seed}, default missing rates; "
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--albums", type=int, default=3000)
    parser.add_argument("--labels", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--track-seconds", type=float, default=6.0)
    parser.add_argument("--config", action="append", default=[])
    args = parser.parse_args()
    manifest = catalog(args.albums, args.labels, args.seed, args.track_seconds)
    output = WORK / f"quality_ablation_{args.albums}_{args.labels}_{args.seed}"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    # A fresh embedding cache inside the output, so that the embedding time is measured
    # (the catalog's own cache would make a re-run near instant).
    fresh_cache = output / "cache_overlay.yaml"
    fresh_cache.write_text(f"data: {{cache_dir: {json.dumps(str(output / 'cache'))}}}\n", encoding="utf-8")
    report = run_ablation(manifest, output / "ablation", config_files=[*args.config, str(fresh_cache)],
                          wandb_mode="disabled", progress=False)
    command = " ".join(["python benchmarks/quality.py", *sys.argv[1:]])
    text = section(report, args.albums, args.labels, args.seed, command)
    (output / "quality.md").write_text(text + "\n", encoding="utf-8")
    (output / "quality.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
