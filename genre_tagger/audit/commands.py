"""The audit job's command (`audit`): its parser and runner; `genre_tagger/cli.py` only
registers it. The runner unpacks the parsed arguments into ``audit_catalog``'s keyword arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from genre_tagger.cli_options import add_inference_options

COMMANDS = ("audit",)
INTERRUPT_HINTS = {"audit": "; embeddings already cached are reused when you start again (with a new --output)"}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser(
        "audit", help="label review queue, fill priorities and per-genre reliability of a catalog")
    audit.add_argument("--checkpoint", required=True, help="model.ckpt of `genre-tagger train`")
    audit.add_argument("--manifest", required=True, help="the catalog to audit (labelled albums are reviewed)")
    audit.add_argument("--output", required=True, help="report folder (must not exist or be empty)")
    audit.add_argument("--folds", type=int, default=5, help="out-of-fold heads over the labelled albums (default 5)")
    audit.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default 0)")
    audit.add_argument("--cache-dir", default=None, help="embedding cache (default: the checkpoint's config's, "
                                                           "else <manifest folder>/.genre_tagger_cache)")
    add_inference_options(audit)


def run(args: argparse.Namespace, progress: bool) -> int:
    from genre_tagger.audit import audit_catalog

    summary = audit_catalog(args.checkpoint, args.manifest, args.output, folds=args.folds, seed=args.seed,
                            cache_dir=args.cache_dir, batch_size=args.batch_size, num_workers=args.num_workers,
                            device=args.device, progress=progress)
    rows = summary["review_rows"]
    print(f"audited {summary['albums']} albums ({summary['reviewed_albums']} labelled): {rows['missing']} missing "
          f"and {rows['unexpected']} unexpected labels to review, {summary['fill_rows']} modalities to fill, "
          f"{summary['reliable_genres']} of {summary['labels']} genres reliable; "
          f"{Path(args.output) / 'report.html'}")
    return 0
