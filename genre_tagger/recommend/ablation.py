"""`genre-tagger ablate-recommender`: the paper's comparison (text only, audio only, fused)
extended to every subset of the tagger's modalities and to ids only, plus popularity and
item-kNN, all on the same split and scored by the same code.

Writes ``ablation.csv``, ``ablation.md``, ``ablation.json`` and ``ablation.png`` (hit
rate@10 overall and on cold-start targets per input set).
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.cpus import worker_count
from genre_tagger.data.modalities import words
from genre_tagger.recommend.baselines import ItemKNN, Popularity
from genre_tagger.recommend.catalog import add_genre_scores, content_features
from genre_tagger.recommend.evaluation import model_scorer
from genre_tagger.recommend.fitting import load_recommend_config, train_one
from genre_tagger.recommend.interactions import load_interactions
from genre_tagger.recommend.metrics import evaluate_scorer
from genre_tagger.runs import default_cache_dir, say

COLUMNS = ("inputs", "hit_rate_at_10", "ndcg_at_10", "mrr", "cold_start_hit_rate_at_10", "train_seconds")


def subsets(modalities: list[str]) -> list[list[str]]:
    """Singles, pairs, ..., all; then ``[]`` (ids only)."""
    out = [list(c) for size in range(1, len(modalities) + 1) for c in itertools.combinations(modalities, size)]
    return out + [[]]


def label(modalities: list[str]) -> str:
    """A row's name: the modalities' words (``audio+cover``), or ``id only``."""
    return "+".join(words(modalities)) if modalities else "id only"


def run_ablation(checkpoint: str | Path, manifest: str | Path, events: str | Path, output: str | Path,
                 config_files: list[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """The whole command (the tagger loaded once); returns the rows, the markdown table and
    the output folder."""
    config = load_recommend_config(config_files)
    tagger = load_checkpoint(checkpoint)
    data = load_interactions(manifest, events)
    content, present = content_features(tagger, data.records, tagger.modalities,
                                        default_cache_dir(config["data"]["cache_dir"], manifest),
                                        worker_count(config["data"]["num_workers"]), progress)
    split = data.split
    histories, targets = split.test_inputs(), split.test_target
    cold = ~split.seen_in_training(data.n_items)[targets]
    genre_scores = config["model"]["genre_scores"]
    rows = []
    for modalities in subsets(tagger.modalities):
        say(f"ablation: {label(modalities)}")
        inputs = (content, present)
        if genre_scores and modalities:  # the genre scores from this subset alone
            inputs = add_genre_scores(tagger, content, present, modalities)
        bundle, summary = train_one(data, *inputs, modalities, config, [], progress)
        metrics = evaluate_scorer(model_scorer(bundle, data.ids, *inputs), histories, targets, cold)
        rows.append({"inputs": label(modalities), **metrics, "train_seconds": summary["train_seconds"]})
    training = split.training_sequences()
    for name, scorer in (("popularity", Popularity(data.n_items).fit(training)),
                         ("item-kNN", ItemKNN(data.n_items, **config["baselines"]["item_knn"]).fit(training))):
        rows.append({"inputs": name, **evaluate_scorer(scorer, histories, targets, cold), "train_seconds": 0.0})
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    parts = (["the tagger's genre scores from the row's modalities"] if genre_scores else []) + (
        ["the row's modality embeddings"] if config["model"]["embeddings"] else [])
    write_tables(rows, out, n_users=len(targets), n_cold=int(cold.sum()), n_albums=data.n_items,
                 content=" and ".join(parts) or "none (id only)")
    plot(rows, out / "ablation.png")
    (out / "ablation.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return {"rows": rows, "markdown": (out / "ablation.md").read_text(encoding="utf-8"), "output": str(out)}


def write_tables(rows: list[dict], out: Path, n_users: int, n_cold: int, n_albums: int,
                 content: str = "the row's modality embeddings") -> None:
    with open(out / "ablation.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[c] if c == "inputs" else f"{row[c]:.4f}" for c in COLUMNS])
    lines = [f"Leave-last-out on {n_users} users ({n_cold} cold-start targets), {n_albums} albums ranked "
             f"(chance hit rate@10 ~ {10 / max(1, n_albums):.4f}). Album content: {content}.", "",
             "| inputs | hit rate@10 | NDCG@10 | MRR | cold-start hit rate@10 | train s |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['inputs']} | {row['hit_rate_at_10']:.3f} | {row['ndcg_at_10']:.3f} | "
                     f"{row['mrr']:.3f} | {row['cold_start_hit_rate_at_10']:.3f} | {row['train_seconds']:.0f} |")
    (out / "ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["inputs"] for row in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.6))
    ax.bar(x - 0.2, [row["hit_rate_at_10"] for row in rows], 0.4, label="all targets")
    ax.bar(x + 0.2, [row["cold_start_hit_rate_at_10"] for row in rows], 0.4, label="cold-start targets")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("hit rate@10")
    ax.set_title("Next-album recommendation by album inputs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
