"""The recommender's commands for `genre-tagger` (docs/metrics.md): parsers and their runs.

``add_parsers(subparsers)`` registers them; ``run(args, progress)`` runs one and returns
the exit status. Only this module (and cli.py) sees parsed arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from genre_tagger.cli_options import add_print_config, print_config

COMMANDS = ("train-recommender", "evaluate-recommender", "recommend", "ablate-recommender")
INTERRUPT_HINTS = {"train-recommender": "; the run folder holds no model: start again with a new --output "
                                        "(embeddings already cached are reused)"}


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_parsers(commands) -> None:
    train = commands.add_parser("train-recommender", help="next-album model on listening histories")
    train.add_argument("--checkpoint", required=True, help="tagger checkpoint whose encoders give album content")
    train.add_argument("--manifest", required=True)
    train.add_argument("--events", required=True, help="listening events (jsonl/csv/parquet: user, album, timestamp)")
    train.add_argument("--output", required=True, help="run directory (must not exist or be empty)")
    train.add_argument("--modalities", default=None, help="comma-separated subset of the tagger's modalities (default: all); 'none' = id only")
    train.add_argument("--config", action="append", default=[], metavar="YAML",
                       help="overlay on configs/recommend/default.yaml, e.g. recommend/tiny")
    train.add_argument("--wandb", choices=["auto", "online", "offline", "disabled"], default=None)
    add_print_config(train)

    evaluate = commands.add_parser("evaluate-recommender", help="leave-last-out metrics with baselines")
    evaluate.add_argument("--model", required=True, help="RUN_DIR/recommender.ckpt")
    evaluate.add_argument("--manifest", required=True)
    evaluate.add_argument("--events", required=True)
    evaluate.add_argument("--output", required=True)

    recommend = commands.add_parser("recommend", help="top-k next albums for a history or for users")
    recommend.add_argument("--model", required=True, help="RUN_DIR/recommender.ckpt")
    recommend.add_argument("--manifest", required=True)
    recommend.add_argument("--history", type=_ids, default=None, help="album ids, oldest first: ID1,ID2,...")
    recommend.add_argument("--events", default=None)
    recommend.add_argument("--users", type=_ids, default=None, help="users of --events: U1,U2,...")
    recommend.add_argument("--top-k", type=int, default=10)

    ablate = commands.add_parser("ablate-recommender",
                                 help="the recommender on every modality subset and on ids only: table + chart")
    ablate.add_argument("--checkpoint", required=True, help="tagger checkpoint")
    ablate.add_argument("--manifest", required=True)
    ablate.add_argument("--events", required=True)
    ablate.add_argument("--output", required=True)
    ablate.add_argument("--config", action="append", default=[], metavar="YAML")


def _headline(metrics: dict) -> str:
    keys = ("hit_rate_at_10", "ndcg_at_10", "mrr", "n_users", "cold_start_hit_rate_at_10", "n_cold_start")
    line = {k: round(metrics[k], 4) if isinstance(metrics[k], float) else metrics[k] for k in keys}
    line["baselines"] = {n: round(b["hit_rate_at_10"], 4) for n, b in metrics.get("baselines", {}).items()}
    return json.dumps(line)


def run(args: argparse.Namespace, progress: bool) -> int:
    if args.command == "train-recommender" and args.print_config:  # before the tagger's modalities are read
        from genre_tagger.recommend.training import load_recommend_config

        return print_config(load_recommend_config(args.config))
    if args.command == "train-recommender":
        from genre_tagger.recommend.training import train_recommender

        metrics = train_recommender(args.checkpoint, args.manifest, args.events, args.output, args.modalities,
                                    args.config, args.wandb, progress)
        print(f"wrote {args.output}\n{_headline(metrics)}")
    elif args.command == "evaluate-recommender":
        from genre_tagger.recommend.evaluation import evaluate_recommender

        metrics = evaluate_recommender(args.model, args.manifest, args.events, args.output, progress)
        print(f"wrote {args.output}/metrics.json\n{_headline(metrics)}")
    elif args.command == "recommend":
        from genre_tagger.recommend.serving import recommend

        for record in recommend(args.model, args.manifest, args.history, args.events, args.users, args.top_k,
                                progress):
            print(json.dumps(record), flush=True)
    elif args.command == "ablate-recommender":
        from genre_tagger.recommend.ablation import run_ablation

        report = run_ablation(args.checkpoint, args.manifest, args.events, args.output, args.config, progress)
        print(report["markdown"], file=sys.stdout)
    return 0
