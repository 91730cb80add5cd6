"""Search quality (issue 12): the joint space against the baselines, one protocol (§7).

    .venv/bin/python benchmarks/search_quality.py [--albums 1200] [--labels 250] [--seed 0] [--seeds 3]
    .venv/bin/python benchmarks/search_quality.py --manifest M --checkpoint RUN/model.ckpt

Makes (or reuses) a synthetic catalog under benchmarks/_work/search_<albums>_<labels>_<seed>/,
trains the tagger there with `genre-tagger train` unless --checkpoint is given, then, on the
same cached embeddings, trains the joint space with `fit_joint_space` (the function `train`
calls) in three settings, each over --seeds seeds: own texts + generated descriptions (the
default), own texts only, no text (audio-cover). All are scored on the test split by
`genre_tagger.search.protocol.search_metrics`, beside a random baseline and the cosine
between the tagger's predicted genre scores. Each joint space's search vectors carry the
tagger's genre scores with the weight `train` selects on val (`search.combine`; 0 allowed);
the default setting is also trained and shown without it (weight 0: the joint space alone). Prints a markdown
section with a test table and the same rows on val.
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
from genre_tagger.search.evaluate import genre_score_baseline, random_baseline
from genre_tagger.search.features import default_cache_dir
from genre_tagger.search.combine import best_weight_score, metrics_at, protocol_vectors, select_genre_weight
from genre_tagger.search.fit import JointSettings, fit_joint_space
from genre_tagger.search.hook import joint_data, search_config, tagger_stems
from genre_tagger.training import train

WORK = Path(__file__).resolve().parent / "_work"
KEYS = ("text_to_album_recall_at_1", "text_to_album_recall_at_5", "text_to_album_recall_at_10",
        "text_to_album_median_rank", "album_to_album_precision_at_10")
DEFAULT = "joint space: own texts + generated descriptions (default)"
JOINT_ALONE = "joint space alone (genre weight 0), own texts + generated descriptions"
VARIANTS = {
    DEFAULT: ["own", "generated"],
    "joint space: generated descriptions only": ["generated"],
    "joint space: own texts only (no generated descriptions)": ["own"],
    "joint space: no text (audio-cover only)": [],
}


def prepare(args) -> tuple[Path, Path]:
    if args.manifest:
        return Path(args.manifest), Path(args.checkpoint)
    folder = WORK / f"search_{args.albums}_{args.labels}_{args.seed}"
    manifest = folder / "catalog" / "manifest.jsonl"
    if not manifest.is_file():
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--albums", type=int, default=1200)
    parser.add_argument("--labels", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3, help="joint-space training seeds per variant")
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
    data = joint_data(bundle, records, splits, default_cache_dir(bundle.config, manifest), source, progress=True)
    tables = {split: {"random": [random_baseline(data, splits[split], seed=s) for s in range(args.seeds)],
                      "tagger's genre scores, cosine": [genre_score_baseline(bundle, data, splits[split])]}
              for split in ("test", "val")}
    timing, chosen = {}, {}
    for name, sources in VARIANTS.items():
        started, chosen[name] = time.monotonic(), []
        for seed in range(args.seeds):
            fit = JointSettings(**{**settings["fit"], "text_sources": sources, "seed": seed})
            space, _ = fit_joint_space(data, fit, progress=False, stems=tagger_stems(bundle),
                                       val_score=best_weight_score(bundle.model, data, splits["val"], fit))
            weight, _, _ = select_genre_weight(space, bundle.model, data, splits["val"], fit)
            chosen[name].append(weight)
            for split, table in tables.items():
                vectors = protocol_vectors(space, bundle.model, data, splits[split])
                table.setdefault(name, []).append(metrics_at(vectors, weight))
            if sources == VARIANTS[DEFAULT]:  # the joint space alone, its epoch chosen for it alone
                alone, _ = fit_joint_space(data, fit, progress=False, stems=tagger_stems(bundle))
                for split, table in tables.items():
                    table.setdefault(JOINT_ALONE, []).append(
                        metrics_at(protocol_vectors(alone, bundle.model, data, splits[split]), 0.0))
            print(f"{name}, seed {seed}: w={weight} test {json.dumps(tables['test'][name][-1])}",
                  file=sys.stderr, flush=True)
        timing[name] = (time.monotonic() - started) / args.seeds
    table = tables["test"]
    n = table["random"][0]
    lines = [f"Catalog: `{manifest}` ({len(records)} albums; test split: {n['n_albums']} gallery albums, "
             f"{n['n_queries']} text queries; {len(data.descriptions.owner)} generated descriptions of the "
             f"{len(splits['train'])} train albums). Joint spaces: mean ± sd over {args.seeds} training seeds; "
             f"training {', '.join(f'{t:.0f}' for t in timing.values())} s per seed on {torch.get_num_threads()} "
             "CPU threads.", "",
             "| method | R@1 | R@5 | R@10 | median rank | album P@10 |", "|---|---:|---:|---:|---:|---:|"]
    lines += [row(f"{name} (w: {', '.join(f'{w:g}' for w in chosen[name])})" if name in chosen else name, runs)
              for name, runs in table.items()]
    lines += ["", "The same rows on the val split (where the epoch and the genre weight were selected):", "",
              lines[2], lines[3]] + [row(name, runs) for name, runs in tables["val"].items()]
    text = "\n".join(lines)
    out = checkpoint.parent / "search_quality.md"
    out.write_text(text + "\n", encoding="utf-8")
    (checkpoint.parent / "search_quality.json").write_text(json.dumps({**tables, "genre_weights": chosen}, indent=1),
                                                           encoding="utf-8")
    print(text)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
