"""How many decoding worker processes to start, and how many threads torch's small training
steps get (imports nothing heavy: the CLI resolves its ``--num-workers`` with it while parsing)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

MAX_AUTO_WORKERS = 8  # each worker holds its own ONNX Runtime sessions (~0.3 GB): bound the memory


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(setting: int | str | None = "auto") -> int:
    """Decoding worker processes for ``setting``: an int as given; ``"auto"`` (or None) one per CPU
    core this process may use, at most ``MAX_AUTO_WORKERS``. On a CPU each worker also runs the
    frozen encoders on one thread, so fewer workers than cores leave cores idle."""
    if setting is None or str(setting) == "auto":
        return max(1, min(usable_cores(), MAX_AUTO_WORKERS))
    if isinstance(setting, bool) or not (isinstance(setting, int) or str(setting).isdigit()) or int(setting) < 0:
        raise ValueError(f"num_workers: expected a whole number >= 0 or 'auto', got {setting!r}")
    return int(setting)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` inside the block, put back after.

    Training on cached embeddings runs small operations (a head's batches of 64 albums, a
    probe's L-BFGS over a few hundred): split over the cores they gain little on an idle
    machine, and while another process keeps a core busy each operation waits for its slowest
    thread (a subset head 2.9 s on 2 threads idle, 9-10 s beside one busy process; on one
    thread 3.0 s either way)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(before)
