"""The data commands (`synth`, `validate`): their parsers and runners.

``add_parsers(subparsers)`` registers them, ``run(args, progress)`` runs one and returns
the exit status; `genre_tagger/cli.py` only registers them. Each runner unpacks the parsed
arguments into plain keyword arguments of a library function.
"""

from __future__ import annotations

import argparse
import sys

from genre_tagger.errors import UserInputError

COMMANDS = ("synth", "validate")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser("synth", help="write a synthetic catalog and its manifest.jsonl")
    synth.add_argument("--output", required=True, help="folder to write (audio, covers, texts, manifest.jsonl)")
    synth.add_argument("--albums", type=int, default=300)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--labels", type=int, default=250, help="vocabulary size (default 250)")
    synth.add_argument("--workers", type=int, default=None,
                       help="rendering processes (default: one per usable CPU core; 0 = in this process)")
    synth.add_argument("--listeners", type=int, default=0, help="also write events.jsonl with N synthetic listeners")
    synth.add_argument("--listeners-only", action="store_true",
                       help="write only events.jsonl, for the catalog `synth` made with the same --albums, "
                            "--seed and --labels (it is not read or rewritten; --output may be another folder)")
    synth.add_argument("--listener-seed", type=int, default=None,
                       help="seed of the listeners (popularity, new releases, histories); default: --seed")

    validate = commands.add_parser("validate", help="list every problem of a manifest with line and field")
    validate.add_argument("manifest")
    validate.add_argument("--deep", action="store_true", help="also decode every audio, cover and text file")


def run(args: argparse.Namespace, progress: bool) -> int:
    if args.command == "synth":
        return _synth(args.output, args.albums, args.seed, args.labels, args.workers, args.listeners,
                      args.listeners_only, args.listener_seed, progress)
    return _validate(args.manifest, args.deep)


def _synth(output: str, albums: int, seed: int, labels: int, workers: int | None, listeners: int,
           listeners_only: bool, listener_seed: int | None, progress: bool) -> int:
    from genre_tagger.data.synthetic import write_catalog
    from genre_tagger.data.synthetic.listeners import write_listeners

    if listeners_only and listeners < 1:
        raise UserInputError("--listeners-only needs --listeners N (N >= 1)")
    if not listeners_only:
        path = write_catalog(output, n_albums=albums, seed=seed, n_labels=labels, workers=workers, progress=progress)
        print(f"wrote {path}")
    if listeners:
        events = write_listeners(output, albums, listeners, seed, labels, listener_seed=listener_seed)
        print(f"wrote {events}")
    return 0


def _validate(manifest: str, deep: bool) -> int:
    """Every issue on stdout, the verdict on stderr; exit status 2 when the manifest is not usable."""
    from genre_tagger.data.manifest import manifest_is_usable, validate_manifest

    issues = validate_manifest(manifest, deep=deep)
    for issue in issues:
        print(issue.format(manifest))
    usable = manifest_is_usable(issues)
    errors = sum(1 for issue in issues if issue.severity == "error")
    print(f"{manifest}: {errors} error(s), {len(issues) - errors} warning(s): "
          f"{'usable' if usable else 'NOT usable'}", file=sys.stderr)
    return 0 if usable else 2
