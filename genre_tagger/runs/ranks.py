"""Which process of a run speaks and writes: rank 0 only.

A multi-process run starts the same command several times: Lightning's ``ddp`` re-runs it
for ranks 1..N-1 once the first ``fit`` begins, torchrun and SLURM start every rank at
once. Messages and files come from rank 0; the other ranks would repeat them.
"""

from __future__ import annotations

import os
import sys


def is_global_zero() -> bool:
    """Whether this process is rank 0 of its job (true when no launcher set a rank)."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return int(os.environ.get("NODE_RANK", 0)) == 0 and int(os.environ.get("LOCAL_RANK", 0)) == 0


def say(message: str, every_rank: bool = False) -> None:
    """A progress or warning line on stderr (stdout carries results), from rank 0 only unless
    ``every_rank`` (a rank's own shard of the work: its notes are not the others')."""
    if every_rank or is_global_zero():
        print(message, file=sys.stderr, flush=True)
