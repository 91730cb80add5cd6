"""The `serve` command's parser and runner; `genre_tagger/cli.py` only registers them.

Like the rest of the CLI, the runner unpacks the parsed arguments into plain keyword
arguments of library functions (``serve.server``) and returns the exit status.
"""

from __future__ import annotations

import argparse
import os

COMMANDS = ("serve",)
TOKEN_ENV = "GENRE_TAGGER_TOKEN"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="web app and JSON API over a catalog: browse, filter, search, map, review",
        description="Serve a catalog from what the other commands wrote: the manifest, and optionally the tag "
                    "output, a search index, the checkpoint (text search, tagging uploads), a recommender and an "
                    "audit folder. Open http://HOST:PORT/ in a browser; the JSON API is under /api/.")
    serve.add_argument("--manifest", required=True, help="the catalog's manifest (jsonl/csv/parquet)")
    serve.add_argument("--tags", default=None, metavar="OUT", help="output of `genre-tagger tag` (jsonl/csv/parquet)")
    serve.add_argument("--index", default=None, metavar="INDEX_DIR", help="search index of `genre-tagger index`")
    serve.add_argument("--checkpoint", default=None, metavar="CKPT",
                       help="model.ckpt: tags uploads; text/audio/cover search when it built --index")
    serve.add_argument("--recommender", default=None, metavar="REC_CKPT",
                       help="recommender.ckpt of `genre-tagger train-recommender`")
    serve.add_argument("--audit", default=None, metavar="DIR", help="output folder of `genre-tagger audit`")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; any other needs a token)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    serve.add_argument("--token", default=None,
                       help=f"require 'Authorization: Bearer T' on every route but /health (default: ${TOKEN_ENV})")


def run(args: argparse.Namespace, progress: bool) -> int:
    from genre_tagger.errors import UserInputError
    from genre_tagger.serve.server import check_binding, listen, open_served, run as run_server

    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port must be between 0 and 65535, got {args.port}")
    check_binding(args.host, token)
    served = open_served(args.manifest, args.tags, args.index, args.checkpoint, args.recommender, args.audit, token)
    run_server(served, listen(args.host, args.port))
    return 0
