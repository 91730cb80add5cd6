"""The `genre-tagger` command line: one parser, every job's commands registered the same way.

Each part brings a ``commands`` module (``COMMAND_MODULES``, in the order of the help):
``COMMANDS`` (the names it owns), ``add_parsers(subparsers)``, ``run(args, progress) -> int``
and, for commands that say how to start again after a stop, ``INTERRUPT_HINTS``. Those
modules and this one are the only ones that see parsed arguments: each command unpacks them
into plain keyword arguments of a library function.

Exit status: 0 success, 2 usage or input error (one-line reason on stderr), 1 anything else,
130 interrupted (Ctrl-C, or SIGTERM from a scheduler).
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from genre_tagger import demo_commands
from genre_tagger.audit import commands as audit_commands
from genre_tagger.data import commands as data_commands
from genre_tagger.errors import UserInputError
from genre_tagger.interrupts import sigterm_as_interrupt
from genre_tagger.recommend import commands as recommend_commands
from genre_tagger.search import commands as search_commands
from genre_tagger.serve import commands as serve_commands
from genre_tagger.tagging import commands as tagging_commands
from genre_tagger.training import commands as training_commands

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

COMMAND_MODULES: tuple[ModuleType, ...] = (
    demo_commands,        # demo
    data_commands,        # synth, validate
    training_commands,    # train, evaluate, ablate
    tagging_commands,     # tag
    search_commands,      # index, search, evaluate-search
    recommend_commands,   # train-recommender, evaluate-recommender, recommend, ablate-recommender
    audit_commands,       # audit
    serve_commands,       # serve
)
INTERRUPT_HINTS = {command: hint for module in COMMAND_MODULES
                   for command, hint in getattr(module, "INTERRUPT_HINTS", {}).items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genre-tagger",
        description="Multimodal, multi-label music genre tagging from audio, cover art and texts.",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(commands)
    for subparser in commands.choices.values():  # `genre-tagger tag ... --quiet` works too
        subparser.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    return parser


def command_module(command: str) -> ModuleType:
    """The ``commands`` module that owns ``command``."""
    for module in COMMAND_MODULES:
        if command in module.COMMANDS:
            return module
    raise AssertionError(command)


def run_command(args: argparse.Namespace) -> int:
    return command_module(args.command).run(args, not args.quiet)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigterm_as_interrupt():  # a scheduler's stop reads like Ctrl-C below
            return run_command(args)
    except UserInputError as err:
        print(f"genre-tagger {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genre-tagger {args.command}: interrupted{INTERRUPT_HINTS.get(args.command, '')}", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("GENRE_TAGGER_DEBUG"):
            raise
        print(f"genre-tagger {args.command}: failed: {type(err).__name__}: {err} "
              "(set GENRE_TAGGER_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
