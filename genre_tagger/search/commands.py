"""The search commands' parsers and runners; `genre_tagger/cli.py` only registers them.

Each runner unpacks the parsed arguments into plain keyword arguments of a library
function, like the rest of the CLI, and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys

from genre_tagger.cli_options import add_evaluation_options, add_inference_options

COMMANDS = ("index", "search", "evaluate-search")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    index = commands.add_parser("index", help="embed a manifest's albums into a search index (re-run adds new ones)")
    index.add_argument("--checkpoint", required=True, help="model.ckpt of `genre-tagger train` (with a joint space)")
    index.add_argument("--manifest", required=True)
    index.add_argument("--output", required=True, help="index folder; re-running adds the manifest's new albums")
    index.add_argument("--index-type", choices=["auto", "flat", "ivf", "hnsw"], default="auto",
                       help="FAISS index (default auto: exact inner product up to 200,000 albums, IVF beyond)")
    add_inference_options(index)

    search = commands.add_parser("search", help="nearest albums to a text, an album, an audio file or a cover")
    search.add_argument("--index", required=True, help="index folder made by `genre-tagger index`")
    search.add_argument("--text", action="append", default=[], metavar="QUERY", help="text query (repeatable)")
    search.add_argument("--like", action="append", default=[], metavar="ALBUM_ID", help="more like this indexed album")
    search.add_argument("--audio", action="append", default=[], metavar="FILE", help="albums that sound like this file")
    search.add_argument("--cover", action="append", default=[], metavar="FILE", help="albums whose cover looks like this")
    search.add_argument("--top-k", type=int, default=10)

    evaluate = commands.add_parser("evaluate-search", help="text-to-album recall and album-to-album precision")
    add_evaluation_options(evaluate)


def run(args: argparse.Namespace, progress: bool) -> int:
    from genre_tagger.errors import UserInputError

    if args.command == "index":
        from genre_tagger.search.index import build_index

        summary = build_index(args.checkpoint, args.manifest, args.output, batch_size=args.batch_size,
                              num_workers=args.num_workers, device=args.device, index_type=args.index_type,
                              progress=progress)
        print(f"indexed {summary['new']} new album(s) ({summary['warnings']} with warnings, {summary['errors']} "
              f"left out: nothing usable; {summary['already']} already there); {args.output} holds "
              f"{summary['total']}: {summary['index']}")
        return 0
    if args.command == "evaluate-search":
        from genre_tagger.search.evaluate import evaluate_search

        metrics = evaluate_search(args.checkpoint, args.manifest, args.output,
                                  split=None if args.split == "all" else args.split, batch_size=args.batch_size,
                                  num_workers=args.num_workers, device=args.device, progress=progress)
        print(json.dumps(metrics))
        return 0
    from genre_tagger.search.query import BadQuery, Query, SearchIndex

    queries = [Query(kind, value) for kind in ("text", "like", "audio", "cover") for value in getattr(args, kind)]
    if not queries:
        raise UserInputError("give a query: --text, --like, --audio or --cover")
    if args.top_k < 1:
        raise UserInputError(f"--top-k must be at least 1, got {args.top_k}")
    index = SearchIndex(args.index)
    status = 0
    for query in queries:
        try:
            print(json.dumps(index.search(query, args.top_k), ensure_ascii=False, default=str), flush=True)
        except BadQuery as err:
            print(f"genre-tagger search: error: {err}", file=sys.stderr)
            status = 2
    return status
