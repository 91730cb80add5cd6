"""The training job's commands (`train`, `evaluate`, `ablate`): parsers and runners.

``add_parsers(subparsers)`` registers them, ``run(args, progress)`` runs one and returns
the exit status; `genre_tagger/cli.py` only registers them. Each runner unpacks the parsed
arguments into plain keyword arguments of a library function.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genre_tagger.cli_options import (
    add_evaluation_options, add_inference_options, add_print_config, add_run_options, print_config,
)

COMMANDS = ("train", "evaluate", "ablate", "update")
INTERRUPT_HINTS = {
    "train": "; the run folder holds no model: start again with a new --output "
             "(embeddings already cached are reused)",
    "ablate": "; embeddings already cached are reused when you start again",
    "update": "; the run folder holds no model: start again with a new --output "
              "(embeddings already cached are reused)",
}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train on split=train, select and calibrate on split=val")
    train.add_argument("--manifest", required=True)
    train.add_argument("--output", required=True, help="run directory (must not exist or be empty)")
    train.add_argument("--modalities", default=None, help="subset of audio,image,text (default: all)")
    train.add_argument("--labels", default=None, help="label list file, one per line (default: from the manifest)")
    train.add_argument("--taxonomy", default=None, metavar="FILE|auto",
                       help="genre taxonomy: child<TAB>parent lines, or 'auto' to infer it from the training "
                            "labels (written to RUN_DIR/taxonomy.tsv); outputs then follow the tree")
    add_run_options(train)
    add_print_config(train)

    evaluate = commands.add_parser("evaluate", help="metrics.json and per_label.csv on a split")
    add_evaluation_options(evaluate)

    ablate = commands.add_parser("ablate", help="every modality subset + the full model with modalities removed")
    ablate.add_argument("--manifest", required=True)
    ablate.add_argument("--output", required=True)
    ablate.add_argument("--checkpoint", default=None,
                        help="reuse this train run's encoders, preprocessing and config instead of training them again")
    ablate.add_argument("--labels", default=None, help="label list file, one per line (default: from the manifest)")
    add_run_options(ablate)
    add_print_config(ablate)

    update = commands.add_parser("update", help="take new or relabelled albums and new labels into a trained model "
                                                "(head, probes and thresholds refit on cached embeddings)")
    update.add_argument("--checkpoint", required=True, help="the model.ckpt of a `train` (or `update`) run")
    update.add_argument("--manifest", required=True,
                        help="the catalog as it is now: the albums trained on (relabelled where needed) and new ones")
    update.add_argument("--output", required=True, help="run directory (must not exist or be empty)")
    update.add_argument("--tolerance", type=float, default=0.025,
                        help="macro ROC-AUC over the old labels the new model may lose (default 0.025: the refit "
                             "noise on the demo's catalog)")
    update.add_argument("--force", action="store_true",
                        help="write model.ckpt even when the new model is worse on the old labels beyond the tolerance")


def run(args: argparse.Namespace, progress: bool) -> int:
    if args.command == "train":
        if args.print_config:
            return print_config(_train_config(args.config, args.wandb, args.modalities))
        from genre_tagger.runs import is_global_zero
        from genre_tagger.training import train

        metrics = train(args.manifest, args.output, modalities=args.modalities, config_files=args.config,
                        labels_file=args.labels, wandb_mode=args.wandb, progress=progress, taxonomy=args.taxonomy)
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
    if args.command == "update":
        from genre_tagger.training.update import update

        metrics = update(args.checkpoint, args.manifest, args.output, force=args.force, tolerance=args.tolerance,
                         progress=progress)
        change = metrics["update"]
        _print_metrics(metrics.get("test") or metrics["val"],
                       f"wrote {args.output} (old labels' macro ROC-AUC {change['old_labels_old']:.4f} -> "
                       f"{change['old_labels_new']:.4f}{'; forced' if change['forced'] else ''})")
        return 0
    if args.print_config:
        return print_config(_run_config(args.config, args.wandb, encoders_from=args.checkpoint))
    from genre_tagger.runs import is_global_zero
    from genre_tagger.training.ablation import run_ablation

    report = run_ablation(args.manifest, args.output, config_files=args.config, wandb_mode=args.wandb,
                          progress=progress, encoders_from=args.checkpoint, labels_file=args.labels)
    if is_global_zero():
        print(Path(report["output"]) / "ablation.md")
    return 0


def _run_config(config_files: list[str], wandb_mode: str | None = None, encoders_from: str | None = None) -> dict:
    """The config a `train` or `ablate` run starts from: the default config (or, with
    ``encoders_from``, that checkpoint's) with the overlays merged in order, upgraded to
    today's shape, and the ``--wandb`` mode set."""
    from genre_tagger.config import load_config
    from genre_tagger.upgrade import upgrade_config

    base = None
    if encoders_from is not None:
        from genre_tagger.checkpoint import load_checkpoint

        base = upgrade_config(load_checkpoint(encoders_from).config)
    config = upgrade_config(load_config(config_files, base=base))
    if wandb_mode:
        config["logger"]["wandb"]["mode"] = wandb_mode
    return config


def _train_config(config_files: list[str], wandb_mode: str | None, modalities: str | None) -> dict:
    """`train`'s config: ``_run_config`` with the modalities it trains on (``--modalities`` or the config's)."""
    from genre_tagger.data.modalities import modality_names, parse_modalities

    config = _run_config(config_files, wandb_mode)
    config["modalities"] = parse_modalities(modalities if modalities is not None else config.get("modalities"),
                                            modality_names())
    return config


def _print_metrics(metrics: dict, headline: str) -> None:
    keys = ("macro_roc_auc", "macro_pr_auc", "micro_f1", "macro_f1", "coverage_at_1", "n_albums")
    print(headline)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items() if k in keys}))
