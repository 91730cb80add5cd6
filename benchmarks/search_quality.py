"""Search quality: the joint space against the baselines, one protocol (docs/metrics.md).

    .venv/bin/python benchmarks/search_quality.py [--albums 1200] [--labels 250] [--seed 0] [--seeds 3]
        [--generator synthetic|synthetic2] [--variants NAME ...]
    .venv/bin/python benchmarks/search_quality.py --manifest M --checkpoint RUN/model.ckpt

Makes (or reuses) a synthetic catalog under benchmarks/_work/search_<albums>_<labels>_<seed>/,
trains the tagger there with `genre-tagger train` unless --checkpoint is given, then, on the
same cached embeddings, fits the joint space with `fit_joint_space` (the function `train`
calls) in the settings of ``VARIANTS``, each over --seeds seeds (once where it does not depend
on the seed: the closed form): the shipped config (regularised CCA between albums and their own
texts + generated descriptions, read through the joint space's tf-idf word view), and one change
each: own texts only, generated descriptions only, InfoNCE fine-tuning from the CCA start, no
text (album side alone, InfoNCE), InfoNCE from a random start. All are scored on the test split by
`genre_tagger.search.protocol.search_metrics`, beside a random baseline and the cosine
between the tagger's predicted genre scores. Each joint space's search vectors carry the
tagger's genre scores with the weight `train` selects on val (`search.combine`; 0 allowed);
the default setting is also fitted and shown without it (weight 0: the joint space alone). Prints a markdown
section with a test table, the same rows on val, and a paired comparison of the default with
the genre-score baseline on the same test queries (difference in recall@10, 95 % bootstrap
interval over queries, queries only one of the two finds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.config import instantiate
from genre_tagger.data.manifest import read_manifest
from genre_tagger.data.synthetic import write_catalog
from genre_tagger.data.synthetic2 import write_catalog2
from genre_tagger.runs import default_cache_dir
from genre_tagger.search.combine import best_weight_score, combine, metrics_at, protocol_vectors, select_genre_weight
from genre_tagger.search.evaluate import genre_score_baseline, genre_score_vectors, random_baseline
from genre_tagger.search.fit import JointSettings, fit_joint_space
from genre_tagger.search.hook import fit_view, search_config, search_data
from genre_tagger.search.protocol import own_ranks, paired_rank_sign_test, paired_recall_difference
from genre_tagger.training import train

WORK = Path(__file__).resolve().parent / "_work"
KEYS = ("text_to_album_recall_at_1", "text_to_album_recall_at_5", "text_to_album_recall_at_10",
        "text_to_album_median_rank", "album_to_album_precision_at_10")
DEFAULT = "joint space + genre scores: shipped config (closed-form CCA; own texts + generated descriptions)"
JOINT_ALONE = "joint space alone (genre weight 0), shipped config"
CONTRASTIVE = {"method": "contrastive", "fusion": "mean", "text_norm": "layer", "max_epochs": 100}
VARIANTS = {  # overrides of the shipped search.fit settings
    DEFAULT: {},
    "joint space + genre scores: own texts only (no generated descriptions)": {"text_sources": ["own"]},
    "joint space + genre scores: generated descriptions only": {"text_sources": ["generated"]},
    "joint space + genre scores: CCA start, then InfoNCE fine-tuning (30 epochs at most)":
        {"max_epochs": 30, "patience": 10},
    "joint space + genre scores: no text (album side alone, InfoNCE)": {**CONTRASTIVE, "text_sources": []},
    "joint space + genre scores: InfoNCE from a random start (linear, own word view)": CONTRASTIVE,
}


def prepare(args) -> tuple[Path, Path]:
    if args.manifest:
        return Path(args.manifest), Path(args.checkpoint)
    family = "" if args.generator == "synthetic" else f"{args.generator}_"
    folder = WORK / f"search_{family}{args.albums}_{args.labels}_{args.seed}"
    manifest = folder / "catalog" / "manifest.jsonl"
    if not manifest.is_file() and args.generator == "synthetic2":
        write_catalog2(manifest.parent, n_albums=args.albums, seed=args.seed, n_genres=args.labels)
    elif not manifest.is_file():
        write_catalog(manifest.parent, n_albums=args.albums, seed=args.seed, n_labels=args.labels, progress=True)
    run = folder / "run"
    if not (run / "model.ckpt").is_file():
        train(manifest, run, config_files=["logger/no_wandb"], progress=True)
    return manifest, run / "model.ckpt"


def row(name: str, runs: list[dict]) -> str:
    cells = []
    for key in KEYS:
        values = np.array([r[key] for r in runs])
        spread = f" ± {values.std():.3f}" if len(values) > 1 and key != "text_to_album_median_rank" else ""
        cells.append(f"{np.mean(values):.3f}{spread}" if "rank" not in key else f"{np.median(values):.1f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def test_ranks(space, weight: float, data, rows) -> np.ndarray:
    """1-based rank of each test query's own album under the combined search vectors."""
    v = protocol_vectors(space, data, rows)
    gallery = combine(v["gallery_joint"], v["gallery_genre"], weight).numpy()
    return own_ranks(combine(v["query_joint"], v["query_genre"], weight).numpy(), v["queries"], gallery)


def paired_lines(paired: list[dict], n_queries: int) -> list[str]:
    lines = ["", f"Paired on the same {n_queries} test queries, default minus the genre-score baseline, recall@10 "
             "(95 % bootstrap interval over queries; queries only the default / only the baseline finds in its top 10):",
             ""]
    for seed, p in enumerate(paired):
        five, signs = p["at_5"], p["ranks"]
        lines.append(f"- {'closed form (one fit)' if len(paired) == 1 else f'seed {seed}'}: {p['delta']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}]; "
                     f"{p['wins']} / {p['losses']} queries; recall@5 {five['delta']:+.3f} [{five['low']:+.3f}, "
                     f"{five['high']:+.3f}]; own album ranked higher for {signs['better']} queries, lower for "
                     f"{signs['worse']} (sign test p = {signs['p_value']:.2g})")
    return lines


def run_variants(args, data, splits, settings, tables) -> tuple[dict, dict, list]:
    """Fits every variant over the seeds on the catalog's ``JointData``; fills ``tables``;
    returns timing, chosen weights, paired stats."""
    base = own_ranks(*genre_score_vectors(data, splits["test"])[:3])
    timing, chosen, paired = {}, {}, []
    for name, overrides in VARIANTS.items():
        if args.variants and name not in args.variants and not any(v in name for v in args.variants):
            continue
        started, chosen[name] = time.monotonic(), []
        merged = {**settings["fit"], **overrides}
        closed_form = merged.get("method") == "cca" and not merged.get("max_epochs")
        for seed in range(1 if closed_form else args.seeds):  # the closed form does not depend on the seed
            fit = JointSettings.from_config(merged, seed=seed)
            space, _ = fit_joint_space(data, fit, progress=False,
                                       val_score=best_weight_score(data, splits["val"], fit))
            weight, _, _ = select_genre_weight(space, data, splits["val"], fit)
            chosen[name].append(weight)
            for split, table in tables.items():
                table.setdefault(name, []).append(metrics_at(protocol_vectors(space, data, splits[split]), weight))
            if name == DEFAULT:
                ranks = test_ranks(space, weight, data, splits["test"])
                paired.append({**paired_recall_difference(ranks, base),
                               "at_5": paired_recall_difference(ranks, base, k=5),
                               "ranks": paired_rank_sign_test(ranks, base)})
                alone, _ = fit_joint_space(data, fit, progress=False)  # chosen for w = 0
                for split, table in tables.items():
                    table.setdefault(JOINT_ALONE, []).append(
                        metrics_at(protocol_vectors(alone, data, splits[split]), 0.0))
            print(f"{name}, seed {seed}: w={weight} test {json.dumps(tables['test'][name][-1])}",
                  file=sys.stderr, flush=True)
        timing[name] = (time.monotonic() - started) / (1 if closed_form else args.seeds)
    return timing, chosen, paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--albums", type=int, default=1200)
    parser.add_argument("--labels", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator", choices=("synthetic", "synthetic2"), default="synthetic")
    parser.add_argument("--seeds", type=int, default=3, help="joint-space training seeds per variant")
    parser.add_argument("--variants", nargs="*", default=[], help="only the variants whose name contains one of these")
    parser.add_argument("--manifest")
    parser.add_argument("--checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small matrices: extra threads only wait on each other on a busy machine
    manifest, checkpoint = prepare(args)
    bundle = load_checkpoint(checkpoint)
    records, _ = read_manifest(manifest)
    splits = {s: np.array([i for i, r in enumerate(records) if r.split == s]) for s in ("train", "val", "test")}
    settings = search_config(bundle.config)
    source = instantiate(settings["descriptions"]) if settings.get("descriptions") else instantiate(
        search_config({})["descriptions"])
    cache = default_cache_dir((bundle.config.get("data") or {}).get("cache_dir"), manifest)
    view = fit_view(bundle, records, splits, {**settings, "text_view": settings.get("text_view")
                                              or search_config({})["text_view"]}, progress=True)
    data = search_data(bundle, records, splits, cache, source, view, progress=True)
    tables = {split: {"random": [random_baseline(data, splits[split], seed=s) for s in range(max(args.seeds, 5))],
                      "tagger's genre scores, cosine": [genre_score_baseline(data, splits[split])]}
              for split in ("test", "val")}
    timing, chosen, paired = run_variants(args, data, splits, settings, tables)
    n, n_val = tables["test"]["random"][0], tables["val"]["random"][0]
    for split in ("test", "val"):  # the random row's expectation: k / gallery size
        g = tables[split]["random"][0]["n_albums"]
        name = f"random (5 draws; expected R@10 = 10/{g} = {10 / g:.3f})"
        tables[split] = {(name if k == "random" else k): v for k, v in tables[split].items()}
    lines = [f"Catalog: `{manifest}` ({len(records)} albums; test split: {n['n_albums']} gallery albums, "
             f"{n['n_queries']} text queries; val: {n_val['n_queries']} queries; "
             f"{len(data.descriptions.owner)} generated descriptions of the {len(splits['train'])} train albums). "
             f"Joint spaces: mean ± sd over {args.seeds} training seeds; training "
             f"{', '.join(f'{t:.0f}' for t in timing.values())} s per seed on {torch.get_num_threads()} CPU threads.",
             "", "| method | R@1 | R@5 | R@10 | median rank | album P@10 |", "|---|---:|---:|---:|---:|---:|"]
    lines += [row(f"{name} (w: {', '.join(f'{w:g}' for w in chosen[name])})" if name in chosen else name, runs)
              for name, runs in tables["test"].items()]
    lines += ["", "The same rows on the val split (where the epoch and the genre weight were selected):", "",
              lines[2], lines[3]] + [row(name, runs) for name, runs in tables["val"].items()]
    if paired:
        lines += paired_lines(paired, n["n_queries"])
    text = "\n".join(lines)
    out = checkpoint.parent / "search_quality.md"
    out.write_text(text + "\n", encoding="utf-8")
    (checkpoint.parent / "search_quality.json").write_text(
        json.dumps({**tables, "genre_weights": chosen, "paired_default_vs_genre_scores": paired}, indent=1),
        encoding="utf-8")
    print(text)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
