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
# `synth --generator`: the catalog families (genre_tagger.data.synthetic, synthetic2, synthetic3)
# and the vocabulary size each takes when --labels is not given.
GENERATORS = {"mumu": 250, "clusters": 40, "sections": 40}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser("synth", help="write a synthetic catalog and its manifest.jsonl")
    synth.add_argument("--output", required=True, help="folder to write (audio, covers, texts, manifest.jsonl)")
    synth.add_argument("--albums", type=int, default=300)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--generator", choices=tuple(GENERATORS), default="mumu",
                       help="catalog family: mumu (MuMu-like: a 250-genre hierarchy, reviews that describe each "
                            "album; the default), clusters (genres in co-occurring clusters, evidence in some "
                            "modalities only, invented words), sections (a genre tree with a long tail, evidence "
                            "in song sections, lettering-like covers, texts with genre words only, a few broken files)")
    synth.add_argument("--labels", type=int, default=None,
                       help="vocabulary size (default: 250 for mumu, 40 for clusters and sections)")
    synth.add_argument("--workers", type=int, default=None,
                       help="rendering processes (default: one per usable CPU core; 0 = in this process; "
                            "clusters renders in this process)")
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
        labels = GENERATORS[args.generator] if args.labels is None else args.labels
        if args.generator != "mumu":
            return _synth_family(args.generator, args.output, args.albums, args.seed, labels, args.workers,
                                 args.listeners or args.listeners_only, progress)
        return _synth(args.output, args.albums, args.seed, labels, args.workers, args.listeners,
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


def _synth_family(generator: str, output: str, albums: int, seed: int, labels: int, workers: int | None,
                  listeners: bool, progress: bool) -> int:
    """The catalog families other than the MuMu-like default (no listeners: those follow its plan)."""
    if listeners:
        raise UserInputError(f"--listeners needs --generator mumu (the listeners follow its catalog plan), "
                             f"not {generator}")
    if albums < 1 or labels < 2:
        raise UserInputError("--albums must be >= 1 and --labels >= 2")
    if generator == "clusters":
        from genre_tagger.data.synthetic2 import write_catalog2

        path = write_catalog2(output, n_albums=albums, seed=seed, n_genres=labels, progress=progress)
    else:
        from genre_tagger.data.synthetic3 import write_catalog3

        path = write_catalog3(output, n_albums=albums, seed=seed, n_labels=labels, workers=workers, progress=progress)
    print(f"wrote {path}")
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
