"""Search quality: the joint space against the baselines, one protocol (docs/metrics.md).

    .venv/bin/python benchmarks/search_quality.py [--albums 1200] [--labels 250] [--seed 0] [--seeds 3]
        [--generator synthetic|synthetic2] [--variants NAME ...] [--no-reference]
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
between the tagger's predicted genre scores, and a simple-features reference: one-vs-rest
logistic regression on the reference's features (`genre_tagger/baselines`: log-mel statistics
and onset autocorrelation, colour and orientation histograms, tf-idf), one trained on audio +
cover for the gallery and one on text for the queries (train split, C chosen on val as the
reference does), compared by the cosine of their genre probabilities. Each joint space's
search vectors carry the tagger's genre scores with the album and text weights `train`
selects on val (`search.weights`); the default setting is also shown with the previous
rule (one weight, the best val text score) and without genre scores (the joint space alone).
Prints a markdown section with a test table, the same rows on val, and paired comparisons of
the default with the genre-score baseline and with the better reference on the same test
queries and gallery albums (differences in recall@10 and precision@10, 95 % bootstrap
intervals over queries / albums, items only one of the two gets right).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genre_tagger.baselines.bench import REFERENCE_LOADERS
from genre_tagger.baselines.features import album_texts, dense_features
from genre_tagger.baselines.reference import C_GRID, TEXT_C_GRID, _standardise, _tfidf, select_c
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.config import instantiate
from genre_tagger.data.dataset import build_loaders
from genre_tagger.data.manifest import read_manifest
from genre_tagger.data.synthetic import write_catalog
from genre_tagger.data.synthetic2 import write_catalog2
from genre_tagger.data.synthetic3 import write_catalog3
from genre_tagger.labels import LabelVocabulary
from genre_tagger.runs import default_cache_dir
from genre_tagger.search.combine import best_weight_score, combined, metrics_at, protocol_vectors
from genre_tagger.search.evaluate import genre_score_baseline, genre_score_vectors, protocol_rows, random_baseline
from genre_tagger.search.fit import JointSettings, fit_joint_space, selection_score
from genre_tagger.search.hook import fit_view, search_config, search_data
from genre_tagger.search.protocol import (own_ranks, paired_difference, paired_rank_sign_test,
                                          paired_recall_difference, precision_shares, search_metrics)
from genre_tagger.search.weights import select_genre_weights
from genre_tagger.training import train

WORK = Path(__file__).resolve().parent / "_work"
KEYS = ("text_to_album_recall_at_1", "text_to_album_recall_at_5", "text_to_album_recall_at_10",
        "text_to_album_median_rank", "album_to_album_precision_at_10")
DEFAULT = "joint space + genre scores: shipped config (closed-form CCA; own texts + generated descriptions)"
JOINT_ALONE = "joint space alone (genre weight 0), shipped config"
ONE_WEIGHT = "shipped config, one weight for both directions (the previous rule: best val text score)"
GENRE = "tagger's genre scores, cosine"
REFERENCE = "simple features + LR (audio + cover / text), genre-probability cosine"
PREVIOUS_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
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
    elif not manifest.is_file() and args.generator == "synthetic3":
        write_catalog3(manifest.parent, n_albums=args.albums, seed=args.seed, n_labels=args.labels)
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


def unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _probabilities(features, targets: np.ndarray, splits: dict, present: np.ndarray, grid) -> np.ndarray:
    """``[N, L]`` genre probabilities of one-vs-rest LR fitted on the present training rows (C on
    val, as the reference chooses it); zeros where ``present`` is false."""
    train, val = (splits[s][present[splits[s]]] for s in ("train", "val"))
    _, model, _, _ = select_c(features, targets, train, val, grid)
    scores = 1.0 / (1.0 + np.exp(-np.clip(model.decision_function(features), -30, 30)))
    return np.where(present[:, None], scores, 0.0)


def reference_probabilities(records, splits: dict, labels: list[str], album_modalities: list[str],
                            cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The simple-features reference's genre probabilities ``[N, L]``: from audio + cover (the
    gallery side) and from text (the query side); features cached in ``cache`` (.npz)."""
    targets, _ = LabelVocabulary(labels).encode(records)
    modalities = [m for m in album_modalities if m in REFERENCE_LOADERS]
    stored = dict(np.load(cache)) if cache.is_file() else {}
    loaders = build_loaders(REFERENCE_LOADERS, [m for m in modalities if m not in stored])
    for m, loader in loaders.items():
        stored[m], stored[f"{m}_present"] = dense_features(records, loader, num_workers=2, progress=True)
    np.savez(cache, **stored)
    present = np.zeros(len(records), bool)
    blocks = []
    for m in modalities:
        present |= stored[f"{m}_present"]
        blocks.append(_standardise(stored[m], stored[f"{m}_present"], splits["train"]))
    album = _probabilities(np.hstack(blocks), targets, splits, present, C_GRID)
    docs, text_present = album_texts(records)
    return album, _probabilities(_tfidf(docs, splits["train"]), targets, splits, text_present, TEXT_C_GRID)


def reference_vectors(reference: tuple[np.ndarray, np.ndarray], data, rows) -> tuple:
    """The reference's ``(queries, owner, gallery, genres)`` on the search protocol's rows."""
    gallery, queries = protocol_rows(data, rows)
    album, text = reference
    return unit(text[gallery[queries]]), queries, unit(album[gallery]), [data.genres[r] for r in gallery]


def items(queries, owner, gallery, genres) -> dict:
    """Per-item results on the same test items: own-album ranks per query, P@10 shares per album."""
    return {"ranks": own_ranks(queries, owner, gallery), "shares": precision_shares(gallery, genres, 10)}


def paired(default: dict, baselines: dict[str, dict]) -> dict[str, dict]:
    """Default minus each baseline on the same test items: recall@10 and @5 over queries (with a
    sign test over whole rankings), precision@10 over gallery albums; 95 % paired bootstrap intervals."""
    return {name: {"recall_at_10": paired_recall_difference(default["ranks"], base["ranks"]),
                   "recall_at_5": paired_recall_difference(default["ranks"], base["ranks"], k=5),
                   "rank_sign_test": paired_rank_sign_test(default["ranks"], base["ranks"]),
                   "precision_at_10": paired_difference(default["shares"], base["shares"])}
            for name, base in baselines.items()}


def paired_lines(comparisons: dict[str, dict], n_queries: int, n_albums: int) -> list[str]:
    """``paired``'s comparisons as markdown lines."""
    lines = ["", f"Paired on the same {n_queries} test queries / {n_albums} gallery albums, default minus each "
             "baseline (95 % bootstrap interval; items only the default / only the baseline gets right):", ""]
    for name, c in comparisons.items():
        r10, r5, signs, p10 = c["recall_at_10"], c["recall_at_5"], c["rank_sign_test"], c["precision_at_10"]
        lines.append(f"- vs {name}: R@10 {r10['delta']:+.3f} [{r10['low']:+.3f}, {r10['high']:+.3f}] "
                     f"({r10['wins']} / {r10['losses']} queries); R@5 {r5['delta']:+.3f} [{r5['low']:+.3f}, "
                     f"{r5['high']:+.3f}]; own album ranked higher for {signs['better']} queries, lower for "
                     f"{signs['worse']} (sign test p = {signs['p_value']:.2g}); album P@10 {p10['delta']:+.3f} "
                     f"[{p10['low']:+.3f}, {p10['high']:+.3f}] ({p10['wins']} / {p10['losses']} albums)")
    return lines


def previous_weight(space, data, rows, fit: JointSettings) -> float:
    """The previous rule: one weight, the best val text score over ``PREVIOUS_WEIGHTS`` (ties: the smaller)."""
    vectors = protocol_vectors(space, data, rows)
    scores = np.array([selection_score(metrics_at(vectors, w), fit) for w in PREVIOUS_WEIGHTS])
    return 0.0 if np.all(np.isnan(scores)) else PREVIOUS_WEIGHTS[int(np.nanargmax(scores))]


def run_variants(args, data, splits, settings, tables) -> tuple[dict, dict, dict | None]:
    """Fits every variant over the seeds on the catalog's ``JointData``; fills ``tables``;
    returns timing, chosen weights (album / text) and the default's per-item test results (first seed)."""
    timing, chosen, default = {}, {}, None
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
            weights, _ = select_genre_weights(space, data, splits["val"])
            chosen[name].append(f"{weights.album:g} / {weights.text:g}")
            for split, table in tables.items():
                vectors = protocol_vectors(space, data, splits[split])
                table.setdefault(name, []).append(metrics_at(vectors, weights.album, weights.text))
            if name == DEFAULT:
                test = protocol_vectors(space, data, splits["test"])
                if default is None:
                    queries, gallery = combined(test, weights.album, weights.text)
                    default = items(queries, test["queries"], gallery, test["genres"])
                old = previous_weight(space, data, splits["val"], fit)
                chosen.setdefault(ONE_WEIGHT, []).append(f"{old:g}")
                alone, _ = fit_joint_space(data, fit, progress=False)  # chosen for w = 0
                for split, table in tables.items():
                    table.setdefault(ONE_WEIGHT, []).append(metrics_at(protocol_vectors(space, data, splits[split]),
                                                                       old))
                    table.setdefault(JOINT_ALONE, []).append(
                        metrics_at(protocol_vectors(alone, data, splits[split]), 0.0))
            print(f"{name}, seed {seed}: w={chosen[name][-1]} test {json.dumps(tables['test'][name][-1])}",
                  file=sys.stderr, flush=True)
        timing[name] = (time.monotonic() - started) / (1 if closed_form else args.seeds)
    return timing, chosen, default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--albums", type=int, default=1200)
    parser.add_argument("--labels", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator", choices=("synthetic", "synthetic2", "synthetic3"), default="synthetic")
    parser.add_argument("--seeds", type=int, default=3, help="joint-space training seeds per variant")
    parser.add_argument("--variants", nargs="*", default=[], help="only the variants whose name contains one of these")
    parser.add_argument("--no-reference", action="store_true", help="leave out the simple-features reference")
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
                      GENRE: [genre_score_baseline(data, splits[split])]}
              for split in ("test", "val")}
    baselines = {GENRE: items(*genre_score_vectors(data, splits["test"]))}
    if not args.no_reference:
        reference = reference_probabilities(records, splits, bundle.labels, list(data.album),
                                            checkpoint.parent / "reference_features.npz")
        for split in ("test", "val"):
            tables[split][REFERENCE] = [search_metrics(*reference_vectors(reference, data, splits[split]))]
        baselines[REFERENCE] = items(*reference_vectors(reference, data, splits["test"]))
    timing, chosen, default = run_variants(args, data, splits, settings, tables)
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
    lines += [row(f"{name} (w, album / text: {', '.join(chosen[name])})" if name in chosen else name, runs)
              for name, runs in tables["test"].items()]
    lines += ["", "The same rows on the val split (where the epoch and the genre weight were selected):", "",
              lines[2], lines[3]] + [row(name, runs) for name, runs in tables["val"].items()]
    comparisons = paired(default, baselines) if default is not None else {}
    if comparisons:
        lines += paired_lines(comparisons, n["n_queries"], n["n_albums"])
    text = "\n".join(lines)
    out = checkpoint.parent / "search_quality.md"
    out.write_text(text + "\n", encoding="utf-8")
    (checkpoint.parent / "search_quality.json").write_text(
        json.dumps({**tables, "genre_weights (album / text)": chosen, "paired (test, default minus)": comparisons},
                   indent=1),
        encoding="utf-8")
    print(text)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
