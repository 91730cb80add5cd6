"""How many decoding worker processes to start (imports nothing heavy: the CLI resolves its
``--num-workers`` with it while parsing)."""

from __future__ import annotations

import os

MAX_AUTO_WORKERS = 8  # each worker holds its own ONNX Runtime sessions (~0.3 GB): bound the memory


def worker_count(setting: int | str | None = "auto") -> int:
    """Decoding worker processes for ``setting``: an int as given; ``"auto"`` (or None) one per CPU
    core this process may use, at most ``MAX_AUTO_WORKERS``. On a CPU each worker also runs the
    frozen encoders on one thread, so fewer workers than cores leave cores idle."""
    if setting is None or str(setting) == "auto":
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(usable, MAX_AUTO_WORKERS))
    if isinstance(setting, bool) or not (isinstance(setting, int) or str(setting).isdigit()) or int(setting) < 0:
        raise ValueError(f"num_workers: expected a whole number >= 0 or 'auto', got {setting!r}")
    return int(setting)
