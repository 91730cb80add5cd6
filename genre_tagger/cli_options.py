"""Command-line options that several jobs' commands share (same flags, same help texts).

Part of the CLI, like cli.py and the jobs' ``commands`` modules; it imports nothing heavy,
so that building the parser stays fast.
"""

from __future__ import annotations

import argparse

WANDB_MODES = ["auto", "online", "offline", "disabled"]


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--config`` overlays and ``--wandb`` of the commands that train a tagger."""
    parser.add_argument("--config", action="append", default=[], metavar="YAML",
                        help="config overlay (repeatable, applied in order), e.g. configs/model/fusion_mean.yaml")
    parser.add_argument("--wandb", choices=WANDB_MODES, default=None,
                        help="W&B mode (default from config: auto = online with WANDB_API_KEY, else offline)")


def add_print_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print-config", action="store_true",
                        help="print the merged config (YAML) that the run would use and exit without running")


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    """Batching, decoding workers and device of the commands that run a trained tagger."""
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=workers_option, default="auto",
                        help="decoding worker processes (on a CPU they also run the encoders, one thread each); "
                             "default auto: one per CPU core, at most 8")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1 ...")


def workers_option(value: str) -> int:
    """``--num-workers``: a count or ``auto``, resolved here (argparse applies it to the default too)."""
    from genre_tagger.cpus import worker_count

    try:
        return worker_count(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_evaluation_options(parser: argparse.ArgumentParser) -> None:
    """The checkpoint, the labelled manifest, the output folder and the split to evaluate on."""
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--split", default="test", help="train/val/test, or 'all' (default: test)")
    add_inference_options(parser)


def print_config(config: dict) -> int:
    """``--print-config``: the config as YAML on stdout, in the key order of ``config.yaml``."""
    import yaml

    print(yaml.safe_dump(config, sort_keys=False), end="")
    return 0
