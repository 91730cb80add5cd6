"""The `demo` command: its parser and runner (the demo itself is ``genre_tagger.demo``).

``add_parsers(subparsers)`` registers it, ``run(args, progress)`` runs it and returns the
exit status; `genre_tagger/cli.py` only registers it.
"""

from __future__ import annotations

import argparse

from genre_tagger.cli_options import WANDB_MODES

COMMANDS = ("demo",)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="the whole job on a built-in synthetic catalog")
    demo.add_argument("--workdir", default="demo_output", help="where every output goes (default: demo_output)")
    demo.add_argument("--albums", type=int, default=None, help="catalog size (default: the demo's own)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--wandb", choices=WANDB_MODES, default=None)


def run(args: argparse.Namespace, progress: bool) -> int:
    from genre_tagger.demo import run_demo

    run_demo(args.workdir, n_albums=args.albums, seed=args.seed, wandb_mode=args.wandb, progress=progress)
    return 0
