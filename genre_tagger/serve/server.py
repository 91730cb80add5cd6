"""Opening what `serve` answers from, and running it on uvicorn.

``open_served`` reads every input once, before the port is opened, so a missing or
unreadable file is a clear error (``UserInputError``: exit 2) and not a failing route:
the manifest and tag output into DuckDB, the index and its map, the checkpoint (one load
serves both text search and uploads when it holds the index's joint space), the
recommender and the audit's tables. ``listen`` binds the socket itself (a port in use is
an input error too) and ``run`` hands it to uvicorn: one process, one event loop, sync
routes in its thread pool.
"""

from __future__ import annotations

import gc
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from genre_tagger.errors import UserInputError
from genre_tagger.serve.app import create_app
from genre_tagger.serve.served import Served
from genre_tagger.serve.catalog import Catalog
from genre_tagger.serve.models import Recommendations, Tagger
from genre_tagger.serve.security import is_loopback
from genre_tagger.serve.vectors import Vectors


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def check_binding(host: str, token: str | None) -> None:
    if token is not None and not token.strip():
        raise UserInputError("--token is empty")
    if not is_loopback(host) and not token:
        raise UserInputError(f"refusing to serve on {host} without a token: pass --token T (or set "
                             "GENRE_TAGGER_TOKEN), or bind to 127.0.0.1")


def open_served(manifest: str | Path, tags: str | Path | None = None, index: str | Path | None = None,
                checkpoint: str | Path | None = None, recommender: str | Path | None = None,
                audit: str | Path | None = None, token: str | None = None,
                say: Callable[[str], None] = _say) -> Served:
    """Everything the server answers from; raises ``UserInputError`` naming a missing or unusable input."""
    started = time.perf_counter()
    notes: dict[str, str] = {}
    catalog = Catalog(manifest, tags, audit, say)
    if tags is None:
        notes["tags"] = "no tag output: albums are listed as untagged (start serve with --tags OUT)"
    search_model = bundle = None
    if checkpoint is not None:
        from genre_tagger.checkpoint import load_checkpoint
        from genre_tagger.search.model import load_search_model

        try:
            search_model = load_search_model(checkpoint) if index is not None else None
            bundle = search_model.bundle if search_model is not None else None
        except UserInputError:
            search_model = None
        if bundle is None:
            bundle = load_checkpoint(checkpoint)  # the real error for a missing or broken file
    vectors = Vectors(index, search_model, say) if index is not None else None
    if vectors is None:
        notes["search"] = "no search index: start serve with --index INDEX_DIR"
    served = Served(catalog, vectors, Tagger(bundle) if bundle is not None else None,
                    Recommendations(recommender, manifest) if recommender is not None else None, token, notes=notes)
    if served.tagger is None:
        notes["tag"] = "tagging uploads needs --checkpoint CKPT"
    if served.recommender is None:
        notes["recommend"] = "recommendations need --recommender REC_CKPT"
    if vectors is not None:
        served.map_json()
    gc.collect()
    gc.freeze()  # what start-up made lives as long as the server: keep it out of every later GC pass
    counts = catalog.counts()
    say(f"serve: {counts['albums']} albums ({counts['ok']} ok, {counts['error']} errors, {counts['untagged']} untagged)"
        + (f", {vectors.size} indexed" if vectors is not None else "")
        + f"; ready in {time.perf_counter() - started:.1f} s")
    return served


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one).

    Made with ``IPPROTO_TCP`` spelled out: asyncio turns Nagle off (``TCP_NODELAY``) only on
    accepted sockets that say so, and with Nagle on, a keep-alive client waits ~40 ms (its
    delayed ACK) for the body that follows each response's headers."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        return sock
    except OSError as err:
        raise UserInputError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err


def run(served: Served, sock: socket.socket, say: Callable[[str], None] = _say, log_level: str = "warning") -> None:
    import uvicorn

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    say(f"serve: http://{shown}:{port}/" + (" (token required; open /?token=TOKEN in a browser)"
                                             if served.token else ""))
    config = uvicorn.Config(create_app(served, loopback_only=served.token is None), log_level=log_level, access_log=False, timeout_keep_alive=30,
                            server_header=False)
    # uvicorn shuts down gracefully on Ctrl-C / SIGTERM, then raises the signal again for the
    # handlers it found: ours just note it, so a stopped server ends normally (exit 0).
    stops: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, lambda number, frame: stops.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    say("serve: stopped" + (f" ({signal.Signals(stops[0]).name})" if stops else ""))
