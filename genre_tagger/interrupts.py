"""SIGTERM handled like Ctrl-C, so a scheduler's stop ends a command cleanly, with a message."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` (main thread only: Python
    delivers signals there); the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def quiet_worker_signals() -> None:
    """Pool-worker initializer: SIGTERM kills quietly and Ctrl-C is left to the parent.

    Forked workers inherit ``sigterm_as_interrupt``'s handler, so ``Pool.terminate`` (which
    sends SIGTERM) made every worker print a KeyboardInterrupt traceback at normal shutdown.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
