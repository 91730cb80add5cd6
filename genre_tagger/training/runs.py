"""Run folders, and which process of a run may write: rank 0 only.

A multi-process run starts the same command several times: Lightning's ``ddp`` re-runs it
for ranks 1..N-1 once the first ``fit`` begins, torchrun and SLURM start every rank at
once, ``ddp_spawn`` forks workers from the one process that holds the run. The "run folder
already exists" check must refuse a user's earlier run but not the other ranks of this
one: rank 0 checks and creates the folder and records it in ``GENRE_TAGGER_RUN_DIR``, which
the ranks Lightning starts inherit; ranks started by torchrun/SLURM are not rank 0 and
never check, create or write.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from genre_tagger.config import dump_yaml
from genre_tagger.errors import UserInputError

RUN_ENV = "GENRE_TAGGER_RUN_DIR"


def is_global_zero() -> bool:
    """Whether this process is rank 0 of its job (true when no launcher set a rank)."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return int(os.environ.get("NODE_RANK", 0)) == 0 and int(os.environ.get("LOCAL_RANK", 0)) == 0


def say(message: str) -> None:
    """A progress line on stderr, from rank 0 only (the other ranks would repeat it)."""
    if is_global_zero():
        print(message, file=sys.stderr, flush=True)


def prepare_run_dir(output: str | Path) -> Path:
    """A fresh run directory; an existing non-empty one is never silently overwritten."""
    run_dir = Path(output)
    if os.environ.get(RUN_ENV) == str(run_dir.resolve()) or not is_global_zero():
        return run_dir  # another rank of the run whose rank 0 made (or will make) the folder
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserInputError(f"run directory {run_dir} already exists and is not empty; choose a new --output")
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ[RUN_ENV] = str(run_dir.resolve())
    return run_dir


def release_run_dir(run_dir: Path) -> None:
    """The run is over: a later run in this process with the same folder is refused again."""
    if os.environ.get(RUN_ENV) == str(Path(run_dir).resolve()):
        del os.environ[RUN_ENV]


def write_run_files(run_dir: Path, config: dict, labels: list[str], thresholds: np.ndarray, metrics: dict) -> None:
    dump_yaml(config, run_dir / "config.yaml")
    (run_dir / "labels.txt").write_text("".join(f"{name}\n" for name in labels), encoding="utf-8")
    rows = ["label,threshold"] + [f"{json.dumps(n)},{t:.6f}" for n, t in zip(labels, thresholds)]
    (run_dir / "thresholds.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
