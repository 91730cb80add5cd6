"""The `genre-tagger` command line. The only module that sees parsed arguments: each
command unpacks them into plain keyword arguments of a library function.

Exit status: 0 success, 2 usage or input error (one-line reason on stderr), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from genre_tagger.errors import UserInputError
from genre_tagger.interrupts import sigterm_as_interrupt
from genre_tagger.recommend import commands as recommend_commands
from genre_tagger.search import commands as search_commands

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _add_common_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", default=[], metavar="YAML",
                        help="config overlay (repeatable, applied in order), e.g. configs/model/fusion_mean.yaml")
    parser.add_argument("--wandb", choices=["auto", "online", "offline", "disabled"], default=None,
                        help="W&B mode (default from config: auto = online with WANDB_API_KEY, else offline)")


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2, help="decoding worker processes")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1 ...")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genre-tagger",
        description="Multimodal, multi-label music genre tagging from audio, cover art and texts.",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="the whole job on a built-in synthetic catalog")
    demo.add_argument("--workdir", default="demo_output", help="where every output goes (default: demo_output)")
    demo.add_argument("--albums", type=int, default=None, help="catalog size (default: the demo's own)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--wandb", choices=["auto", "online", "offline", "disabled"], default=None)

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

    train = commands.add_parser("train", help="train on split=train, select and calibrate on split=val")
    train.add_argument("--manifest", required=True)
    train.add_argument("--output", required=True, help="run directory (must not exist or be empty)")
    train.add_argument("--modalities", default=None, help="subset of audio,image,text (default: all)")
    train.add_argument("--labels", default=None, help="label list file, one per line (default: from the manifest)")
    _add_common_run_options(train)

    evaluate = commands.add_parser("evaluate", help="metrics.json and per_label.csv on a split")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--manifest", required=True)
    evaluate.add_argument("--output", required=True)
    evaluate.add_argument("--split", default="test", help="train/val/test, or 'all' (default: test)")
    _add_inference_options(evaluate)

    tag = commands.add_parser("tag", help="tag a catalog (streaming, resumable)")
    tag.add_argument("--checkpoint", required=True)
    tag.add_argument("--manifest", required=True)
    tag.add_argument("--output", required=True, help="output file; re-running resumes it")
    tag.add_argument("--format", choices=["jsonl", "csv", "parquet"], default=None,
                     help="default: from the output's extension, else jsonl")
    tag.add_argument("--top-k", type=int, default=10, help="labels with scores per album (default 10)")
    tag.add_argument("--all-scores", action="store_true", help="write every label's score")
    tag.add_argument("--threshold", type=float, default=None, help="one threshold for all labels instead of the calibrated ones")
    _add_inference_options(tag)
    tag.add_argument("--devices", default=None,
                     help="several GPUs / processes through Lightning (e.g. 4 or auto): one shard per rank, then a merge")
    tag.add_argument("--strategy", default="ddp", help="Lightning strategy with --devices (default ddp)")
    tag.add_argument("--num-nodes", type=int, default=1, help="machines, each running the same command (default 1)")

    ablate = commands.add_parser("ablate", help="every modality subset + the full model with modalities removed")
    ablate.add_argument("--manifest", required=True)
    ablate.add_argument("--output", required=True)
    ablate.add_argument("--checkpoint", default=None,
                        help="reuse this train run's encoders, preprocessing and config instead of training them again")
    ablate.add_argument("--labels", default=None, help="label list file, one per line (default: from the manifest)")
    _add_common_run_options(ablate)
    search_commands.add_parsers(commands)  # index, search, evaluate-search
    recommend_commands.add_parsers(commands)  # train-recommender, evaluate-recommender, recommend
    for subparser in commands.choices.values():  # `genre-tagger tag ... --quiet` works too
        subparser.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    return parser


def _synth(args: argparse.Namespace, progress: bool) -> int:
    from genre_tagger.data.synthetic import write_catalog
    from genre_tagger.data.synthetic.listeners import write_listeners

    if args.listeners_only and args.listeners < 1:
        raise UserInputError("--listeners-only needs --listeners N (N >= 1)")
    if not args.listeners_only:
        path = write_catalog(args.output, n_albums=args.albums, seed=args.seed, n_labels=args.labels,
                             workers=args.workers, progress=progress)
        print(f"wrote {path}")
    if args.listeners:
        events = write_listeners(args.output, args.albums, args.listeners, args.seed, args.labels,
                                 listener_seed=args.listener_seed)
        print(f"wrote {events}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    progress = not args.quiet
    if args.command == "synth":
        return _synth(args, progress)
    if args.command in recommend_commands.COMMANDS:
        return recommend_commands.run(args, progress)
    if args.command == "validate":
        return _validate(args.manifest, args.deep)
    if args.command == "train":
        from genre_tagger.training import train
        from genre_tagger.runs import is_global_zero

        metrics = train(args.manifest, args.output, modalities=args.modalities, config_files=args.config,
                        labels_file=args.labels, wandb_mode=args.wandb, progress=progress)
        if is_global_zero():  # the other ranks of a DDP run trained alongside; rank 0 reports
            _print_metrics(metrics.get("test") or metrics["val"], f"wrote {args.output}")
        return 0
    if args.command == "evaluate":
        from genre_tagger.training.evaluation import evaluate

        metrics = evaluate(args.checkpoint, args.manifest, args.output, split=None if args.split == "all" else args.split,
                           batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
                           progress=progress)
        _print_metrics(metrics, f"wrote {args.output}/metrics.json and per_label.csv")
        return 0
    if args.command == "tag":
        from genre_tagger.tagging import tag_catalog

        summary = tag_catalog(args.checkpoint, args.manifest, args.output, output_format=args.format,
                              top_k=args.top_k, all_scores=args.all_scores, threshold=args.threshold,
                              batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
                              progress=progress, devices=_devices(args.devices), strategy=args.strategy,
                              num_nodes=args.num_nodes)
        return 0 if summary.get("error", 0) < summary.get("total", 0) or summary.get("total", 0) == 0 else 1
    if args.command == "ablate":
        from genre_tagger.training.ablation import run_ablation
        from genre_tagger.runs import is_global_zero

        report = run_ablation(args.manifest, args.output, config_files=args.config, wandb_mode=args.wandb,
                              progress=progress, encoders_from=args.checkpoint, labels_file=args.labels)
        if is_global_zero():
            print(Path(report["output"]) / "ablation.md")
        return 0
    if args.command in search_commands.COMMANDS:
        return search_commands.run(args, progress)
    if args.command == "demo":
        from genre_tagger.demo import run_demo

        run_demo(args.workdir, n_albums=args.albums, seed=args.seed, wandb_mode=args.wandb, progress=progress)
        return 0
    raise AssertionError(args.command)


def _devices(text: str | None) -> int | str | None:
    """``--devices 4`` -> 4; ``auto`` and ``-1`` pass through as Lightning reads them."""
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise UserInputError(f"--devices takes a number or 'auto', got {text!r}") from None


def _validate(manifest: str, deep: bool) -> int:
    from genre_tagger.data.manifest import manifest_is_usable, validate_manifest

    issues = validate_manifest(manifest, deep=deep)
    for issue in issues:
        print(issue.format(manifest))
    usable = manifest_is_usable(issues)
    errors = sum(1 for issue in issues if issue.severity == "error")
    print(f"{manifest}: {errors} error(s), {len(issues) - errors} warning(s): "
          f"{'usable' if usable else 'NOT usable'}", file=sys.stderr)
    return 0 if usable else 2


def _print_metrics(metrics: dict, headline: str) -> None:
    keys = ("macro_roc_auc", "macro_pr_auc", "micro_f1", "macro_f1", "coverage_at_1", "n_albums")
    print(headline)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items() if k in keys}))


INTERRUPT_HINTS = {
    "tag": "; re-run the same command to resume",
    "train": "; the run folder holds no model: start again with a new --output "
             "(embeddings already cached are reused)",
    "ablate": "; embeddings already cached are reused when you start again",
}


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
