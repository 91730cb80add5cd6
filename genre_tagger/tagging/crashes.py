"""Surviving DataLoader workers that die or hang inside a decoder's C code.

Every worker publishes the album it is decoding in shared memory (``InFlight``); after a
crash the main process reads the slots to find the suspects and retries each alone. Writes
and their bookkeeping run with signals deferred, so an album is never on disk without
being marked done, or the other way round.
"""

from __future__ import annotations

import multiprocessing
import re
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

SLOT_BYTES = 512  # shared-memory bytes per worker for "index<TAB>id" of the album in flight
MAX_CRASHES_WITHOUT_PROGRESS = 3


class InFlight:
    """Which album each DataLoader worker is decoding, in shared memory.

    A worker writes ``"index\\tid"`` into its slot before decoding an album and clears it
    after; when a worker dies, the main process reads the slots to find the suspects.
    """

    def __init__(self, n_workers: int):
        self.n_workers = max(1, n_workers)
        self._slots = multiprocessing.Array("c", self.n_workers * SLOT_BYTES, lock=False)

    def set(self, worker: int, index: int, album_id: str) -> None:
        data = f"{index}\t{album_id}".encode("utf-8")[: SLOT_BYTES - 1] + b"\0"
        start = worker * SLOT_BYTES
        self._slots[start : start + len(data)] = data

    def clear(self, worker: int) -> None:
        self._slots[worker * SLOT_BYTES] = b"\0"

    def albums(self) -> list[tuple[int, str]]:
        """``(manifest index, id)`` of every album a worker had started and not finished."""
        found = []
        for worker in range(self.n_workers):
            raw = bytes(self._slots[worker * SLOT_BYTES : (worker + 1) * SLOT_BYTES]).split(b"\0")[0]
            if raw:
                index, _, album_id = raw.decode("utf-8", errors="replace").partition("\t")
                found.append((int(index), album_id))
        return found


@contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)) -> Iterator[None]:
    """Hold back Python-level signal handlers (Ctrl-C; torch's SIGCHLD handler, which raises
    when a worker dies) while a write and its bookkeeping run, then replay them: so an
    album is never on disk without being marked done, or the other way round."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, Any]] = []
    previous = {}
    for signum in signums:
        previous[signum] = signal.signal(signum, lambda n, f: pending.append((n, f)))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in pending:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL and signum != signal.SIGCHLD:
                signal.raise_signal(signum)


# What a DataLoader raises in the main process when a worker dies or hangs: torch's own
# RuntimeError, or, when the worker dies while handing a batch's tensors over by file
# descriptor, a broken connection to it (ConnectionResetError, EOFError).
WORKER_FAILURES = (RuntimeError, ConnectionError, EOFError)


def is_worker_failure(err: BaseException) -> bool:
    if isinstance(err, (ConnectionError, EOFError)):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("DataLoader worker" in text or "DataLoader timed out" in text)


def short_reason(err: BaseException) -> str:
    """First sentence of an error, without torch's worker pids (they mean nothing later)."""
    text = re.sub(r"\s*\(pid(\(s\))? [\d, ]+\)", "", " ".join(str(err).split()))
    return text.split(". ")[0].rstrip(".") or type(err).__name__
