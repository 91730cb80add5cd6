"""Next-album recommendation benchmark: quality with baselines, training time,
`recommend` latency, memory; plus the synthetic listeners' calibration.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/recommend.py --workdir /tmp/rec_bench \
        --albums 1000 --listeners 5000 [--tagger-config experiment/tiny] [--ablation]

Steps (each skipped when its output exists in --workdir): a synthetic catalog and its
listeners; a tagger (`train`, its encoders give album content); calibration of the
listeners (popularity, item-kNN and a ranking by the history's true genres, no model);
`train-recommender` in a child process (wall time, peak RSS); `recommend` latency per user;
optionally `ablate-recommender`. Prints a markdown section for benchmarks/RESULTS.md and
writes it to WORKDIR/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PYTHON = sys.executable


def cli(*args: str) -> float:
    """Run `genre-tagger ARGS` in a child process; returns its wall time."""
    clock = time.monotonic()
    subprocess.run([PYTHON, "-m", "genre_tagger.cli", "--quiet", *args], check=True)
    return time.monotonic() - clock


def make_catalog(workdir: Path, albums: int, listeners: int, track_seconds: float, seed: int, n_labels: int) -> Path:
    from genre_tagger.data.synthetic import write_catalog
    from genre_tagger.data.synthetic.listeners import write_listeners

    catalog = workdir / "catalog"
    if not (catalog / "manifest.jsonl").exists():
        write_catalog(catalog, n_albums=albums, seed=seed, track_seconds=track_seconds, n_labels=n_labels,
                      progress=False)
    if not (catalog / "events.jsonl").exists():
        write_listeners(catalog, albums, listeners, seed=seed, n_labels=n_labels)
    return catalog


def genre_ranking(plans, vocab):
    """A no-model reference: albums by the cosine of their true genres with the history's
    (recent plays weighted more). Says how much content *can* tell, not what the model learns."""
    index = {label: i for i, label in enumerate(vocab.labels)}
    genres = np.zeros((len(plans), len(vocab.labels)))
    for i, plan in enumerate(plans):
        genres[i, [index[g] for g in plan.true_genres]] = 1.0
    genres /= np.linalg.norm(genres, axis=1, keepdims=True)

    def score(histories):
        out = np.zeros((len(histories), len(plans)))
        for row, history in enumerate(histories):
            profile = ((0.7 ** np.arange(len(history))[::-1])[:, None] * genres[history]).sum(axis=0)
            out[row] = genres @ profile
        return out

    return score


def calibration(events: Path, albums: int, seed: int, n_labels: int = 250) -> dict:
    from genre_tagger.data.events import read_events
    from genre_tagger.data.synthetic import build_vocabulary, plan_catalog
    from genre_tagger.recommend.baselines import ItemKNN, Popularity
    from genre_tagger.recommend.metrics import evaluate_scorer
    from genre_tagger.recommend.splits import leave_last_out

    plans = plan_catalog(albums, seed, n_labels=n_labels)
    ids = [p.id for p in plans]
    split = leave_last_out(read_events(events, ids).histories, {a: i for i, a in enumerate(ids)})
    histories, targets = split.test_inputs(), split.test_target
    cold = ~split.seen_in_training(len(ids))[targets]
    training = split.training_sequences()
    out = {name: evaluate_scorer(scorer, histories, targets, cold) for name, scorer in (
        ("popularity", Popularity(len(ids)).fit(training)), ("item_knn", ItemKNN(len(ids)).fit(training)),
        ("true_genres", genre_ranking(plans, build_vocabulary(n_labels))))}
    out["chance_hit_rate_at_10"] = 10.0 / len(ids)
    out["events"] = sum(len(s) for s in training) + 2 * len(targets)
    return out


def latency(model: Path, manifest: Path, events: Path, users: int = 200) -> dict:
    from genre_tagger.data.events import read_events
    from genre_tagger.recommend.serving import Recommender

    clock = time.monotonic()
    engine = Recommender(model, manifest)
    load = time.monotonic() - clock
    log = read_events(events, engine.ids)
    names = sorted(log.histories)[:users]
    histories = [engine.indices(log.histories[u]) for u in names]
    singles = []
    for history in histories:
        clock = time.perf_counter()
        engine.top_k([history], 10)
        singles.append(time.perf_counter() - clock)
    clock = time.perf_counter()
    engine.top_k(histories, 10)
    batched = (time.perf_counter() - clock) / len(histories)
    return {"load_s": load, "median_ms_per_user": 1000 * statistics.median(singles),
            "p90_ms_per_user": 1000 * float(np.percentile(singles, 90)), "batched_ms_per_user": 1000 * batched,
            "users": len(histories),
            "peak_rss_mb_this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def paired_against_baselines(run: Path, manifest: Path, events: Path) -> dict:
    """Hit rate@10 of the trained model minus each baseline's on the same test users, with a
    95 % paired bootstrap interval and the users only one of the two hits (wins / losses)."""
    from genre_tagger.recommend.baselines import ItemKNN, Popularity
    from genre_tagger.recommend.catalog import recommender_content
    from genre_tagger.recommend.evaluation import model_scorer
    from genre_tagger.recommend.interactions import load_interactions
    from genre_tagger.recommend.metrics import score_ranks
    from genre_tagger.recommend.store import load_recommender
    from genre_tagger.search.protocol import paired_recall_difference

    bundle = load_recommender(run / "recommender.ckpt")
    data = load_interactions(manifest, events)
    content, present = recommender_content(bundle, data.records, manifest, 0, False)
    histories, targets, training = data.split.test_inputs(), data.split.test_target, data.split.training_sequences()
    scorers = {"popularity": Popularity(data.n_items).fit(training),
               "item_knn": ItemKNN(data.n_items, **bundle.config["baselines"]["item_knn"]).fit(training)}
    if (run / "id_only.ckpt").exists():
        scorers["id_only"] = model_scorer(load_recommender(run / "id_only.ckpt"), data.ids, content, present)
    model = score_ranks(model_scorer(bundle, data.ids, content, present), histories, targets)
    return {name: paired_recall_difference(model, score_ranks(scorer, histories, targets), k=10)
            for name, scorer in scorers.items()}


def child_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--albums", type=int, default=1000)
    parser.add_argument("--listeners", type=int, default=5000)
    parser.add_argument("--track-seconds", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=int, default=250, help="the catalog's label count (synth --labels)")
    parser.add_argument("--catalog", type=Path, default=None,
                        help="an existing catalog folder (manifest.jsonl) `synth` made with --albums/--seed")
    parser.add_argument("--events", type=Path, default=None,
                        help="listening events (default: CATALOG/events.jsonl if there, else --listeners synthetic "
                             "listeners written to WORKDIR/listeners/events.jsonl; the catalog folder is not written)")
    parser.add_argument("--listener-seed", type=int, default=None, help="seed of the listeners (default: --seed)")
    parser.add_argument("--modalities", default=None, help="train-recommender --modalities (default: the tagger's)")
    parser.add_argument("--tagger", type=Path, default=None, help="an existing tagger checkpoint for this catalog")
    parser.add_argument("--tagger-config", action="append", default=None)
    parser.add_argument("--recommender-config", action="append", default=[])
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--ablation-events", type=Path, default=None, help="events for the ablation (default: --listeners')")
    parser.add_argument("--ablation-config", action="append", default=[])
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    catalog = args.catalog or make_catalog(work, args.albums, args.listeners, args.track_seconds, args.seed, args.labels)
    manifest, events = catalog / "manifest.jsonl", args.events or catalog / "events.jsonl"
    if not events.exists() or (args.listener_seed is not None and args.events is None):
        from genre_tagger.data.synthetic.listeners import write_listeners

        events = work / "listeners" / "events.jsonl"
        if not events.exists():
            write_listeners(events.parent, args.albums, args.listeners, seed=args.seed, n_labels=args.labels,
                            listener_seed=args.listener_seed)
    tagger = args.tagger or work / "tagger" / "model.ckpt"
    if not tagger.exists():
        extra = [a for c in (args.tagger_config or []) for a in ("--config", c)]
        cli("train", "--manifest", str(manifest), "--output", str(tagger.parent), "--wandb", "disabled", *extra)
    report: dict = {"albums": args.albums, "listeners": args.listeners, "torch_threads": os.cpu_count()}
    report["calibration"] = calibration(events, args.albums, args.seed, args.labels)
    run = work / "recommender"
    if not (run / "metrics.json").exists():
        extra = [a for c in args.recommender_config for a in ("--config", c)]
        report["train_recommender_wall_s"] = cli(
            "train-recommender", "--checkpoint", str(tagger), "--manifest", str(manifest), "--events", str(events),
            "--output", str(run), "--wandb", "disabled", *extra,
            *(["--modalities", args.modalities] if args.modalities else []))
        report["train_recommender_peak_rss_mb"] = child_peak_rss_mb()
    report["metrics"] = json.loads((run / "metrics.json").read_text())
    report["paired_hit_rate_at_10"] = paired_against_baselines(run, manifest, events)
    report["latency"] = latency(run / "recommender.ckpt", manifest, events)
    if args.ablation and not (work / "ablation" / "ablation.md").exists():
        extra = [a for c in args.ablation_config for a in ("--config", c)]
        report["ablation_wall_s"] = cli("ablate-recommender", "--checkpoint", str(tagger), "--manifest", str(manifest),
                                        "--events", str(args.ablation_events or events), "--output",
                                        str(work / "ablation"), *extra)
    (work / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
