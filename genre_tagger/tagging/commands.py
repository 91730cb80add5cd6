"""The tagging job's command (`tag`): its parser and runner.

``add_parsers(subparsers)`` registers it, ``run(args, progress)`` runs it and returns the
exit status; `genre_tagger/cli.py` only registers it. The runner unpacks the parsed
arguments into plain keyword arguments of ``tag_catalog``.
"""

from __future__ import annotations

import argparse

from genre_tagger.cli_options import add_inference_options
from genre_tagger.errors import UserInputError

COMMANDS = ("tag",)
INTERRUPT_HINTS = {"tag": "; re-run the same command to resume"}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    tag = commands.add_parser("tag", help="tag a catalog (streaming, resumable)")
    tag.add_argument("--checkpoint", required=True)
    tag.add_argument("--manifest", required=True)
    tag.add_argument("--output", required=True, help="output file; re-running resumes it")
    tag.add_argument("--format", choices=["jsonl", "csv", "parquet"], default=None,
                     help="default: from the output's extension, else jsonl")
    tag.add_argument("--top-k", type=int, default=10, help="labels with scores per album (default 10)")
    tag.add_argument("--all-scores", action="store_true", help="write every label's score")
    tag.add_argument("--threshold", type=float, default=None, help="one threshold for all labels instead of the calibrated ones")
    tag.add_argument("--explain", action="store_true",
                     help="add `evidence` to each record: its genres' scores from each modality alone and without each")
    add_inference_options(tag)
    tag.add_argument("--devices", default=None,
                     help="several GPUs / processes through Lightning (e.g. 4 or auto): one shard per rank, then a merge")
    tag.add_argument("--strategy", default="ddp", help="Lightning strategy with --devices (default ddp)")
    tag.add_argument("--num-nodes", type=int, default=1, help="machines, each running the same command (default 1)")


def run(args: argparse.Namespace, progress: bool) -> int:
    """Exit status 1 when every album of a non-empty catalog failed, else 0."""
    from genre_tagger.tagging import tag_catalog

    summary = tag_catalog(args.checkpoint, args.manifest, args.output, output_format=args.format,
                          top_k=args.top_k, all_scores=args.all_scores, threshold=args.threshold,
                          batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
                          progress=progress, devices=_devices(args.devices), strategy=args.strategy,
                          num_nodes=args.num_nodes, explain=args.explain)
    return 0 if summary.get("error", 0) < summary.get("total", 0) or summary.get("total", 0) == 0 else 1


def _devices(text: str | None) -> int | str | None:
    """``--devices 4`` -> 4; ``auto`` and ``-1`` pass through as Lightning reads them."""
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise UserInputError(f"--devices takes a number or 'auto', got {text!r}") from None
