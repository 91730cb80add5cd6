"""Run folders: a run never silently overwrites an earlier one, under DDP too.

The "run folder already exists" check must refuse a user's earlier run but not the other
ranks of this one: rank 0 checks and creates the folder and records it in
``GENRE_TAGGER_RUN_DIR``, which the ranks Lightning starts inherit; ranks started by
torchrun/SLURM are not rank 0 and never check, create or write.
"""

from __future__ import annotations

import os
from pathlib import Path

from genre_tagger.errors import UserInputError
from genre_tagger.runs.ranks import is_global_zero

RUN_ENV = "GENRE_TAGGER_RUN_DIR"


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


def default_cache_dir(cache_dir: str | Path | None, manifest: str | Path) -> Path:
    """The embedding cache: ``cache_dir`` when set, else ``<manifest folder>/.genre_tagger_cache``
    (one cache per catalog, shared by every job that embeds it)."""
    return Path(cache_dir) if cache_dir else Path(manifest).resolve().parent / ".genre_tagger_cache"
