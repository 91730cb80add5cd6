"""Load test of `genre-tagger serve` on a large catalog, on this machine.

What it measures:

1. **Start-up**: from starting the server process (`genre-tagger serve` through its own
   command module, as the CLI runs it) to the first ``/health`` answer, the server's own
   "ready in" figure (reading the manifest and tag output into DuckDB, the index, the
   checkpoint, the map), and its RSS once ready.
2. **Latency under load**, route by route: ``--clients`` concurrent HTTP clients (httpx,
   asyncio, keep-alive) send requests back to back for ``--seconds``: p50 / p90 / p99 / max
   latency, requests per second, errors (any status but 200, or a failed request), and the
   server's peak RSS during the run (psutil, every 0.25 s).

Routes: ``filter`` (``/api/albums`` with random genre / min score / status / modality /
text filters, sorts and offsets), ``album`` (``/api/albums/{id}``), ``similar``
(``/api/albums/{id}/similar?k=10``), ``text`` (``/api/search?text=...&k=10``, a new
text nearly every time: phrase, mood and year drawn at random, so the server's cache of
recent queries does not flatter the figure).

The catalog: ``--albums`` made-up albums (``serve.synthetic``: manifest and tag records,
16 genres, no media files) and random unit vectors (clustered by genre) in an exact FAISS
index. Text search is real: the index names a real checkpoint and carries its joint
space's digest, so each query is embedded by that checkpoint's text path (the default
config's MiniLM + tf-idf view, then the joint space) before the FAISS search over
``--albums`` vectors. Without ``--checkpoint`` one is trained once, from
``configs/default.yaml``, on an 80-album synthetic catalog in the work folder (a few minutes).

Clients and server share the machine's cores (2 here, with other work on them): the
figures include that contention. Usage::

    .venv/bin/python benchmarks/serve_load.py                      # 100,000 albums, 8 clients, 20 s per route
    .venv/bin/python benchmarks/serve_load.py --albums 10000 --seconds 5 --routes filter album
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
QUERIES = [
    "loud distorted guitars and pounding drums", "gentle piano and strings", "dusty slide guitar blues",
    "fast electronic dance beats with heavy bass", "smooth jazz saxophone late at night", "acoustic folk songs",
    "angry punk with shouted vocals", "lush orchestral film music", "laid back reggae grooves",
    "soulful vocals and a horn section", "dark ambient drones", "upbeat pop with catchy choruses",
    "rap verses over sampled beats", "country ballads with pedal steel", "latin percussion and brass",
    "heavy metal riffs and double bass drums", "quiet solo piano", "psychedelic rock with long jams",
    "a warm live recording", "synthesizers and drum machines from the eighties",
]
MOODS = ("melancholic", "joyful", "late at night", "for a road trip", "raw and live", "polished", "dreamy",
         "aggressive", "relaxed", "danceable", "intimate", "epic", "lo-fi", "instrumental", "with a choir")
SERVER = """
import argparse, sys
from genre_tagger.serve import commands
parser = argparse.ArgumentParser(prog="genre-tagger")
commands.add_parsers(parser.add_subparsers(dest="command", required=True))
sys.exit(commands.run(parser.parse_args(sys.argv[1:]), False))
"""


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def trained_checkpoint(work: Path) -> Path:
    """``configs/default.yaml`` trained on an 80-album synthetic catalog (made once)."""
    checkpoint = work / "model" / "run" / "model.ckpt"
    if checkpoint.is_file():
        return checkpoint
    from genre_tagger.data.synthetic import write_catalog
    from genre_tagger.training import train

    say("training the default config on 80 synthetic albums (once; a few minutes)")
    manifest = write_catalog(work / "model" / "catalog", n_albums=80, seed=1, n_labels=16, track_seconds=3.0,
                             sample_rate=16000, progress=False)
    train(manifest, work / "model" / "run", wandb_mode="disabled", progress=False)
    return checkpoint


def joint_space(checkpoint: Path) -> tuple[int, str]:
    """(search vector width, joint-space digest) of ``checkpoint``."""
    from genre_tagger.search.model import load_search_model

    model = load_search_model(checkpoint)
    return model.width, model.digest


def make_catalog(work: Path, n: int, checkpoint: Path, seed: int) -> dict:
    from genre_tagger.serve.synthetic import write_catalog_records, write_vector_index

    dim, space = joint_space(checkpoint)
    folder = work / f"catalog-{n}-{dim}-{seed}"
    done = folder / "done.json"
    if not done.is_file():
        say(f"writing a {n}-album catalog ({dim}-wide vectors)")
        made = write_catalog_records(folder, n, seed=seed, dim=dim)
        write_vector_index(folder / "index", made["ids"], made["vectors"], checkpoint=str(checkpoint), space=space)
        done.write_text(json.dumps({"ids": len(made["ids"])}))
    ids = [json.loads(line)["id"] for line in open(folder / "manifest.jsonl", encoding="utf-8")]
    genres = sorted({g for line in open(folder / "tags.jsonl", encoding="utf-8")
                     for g in json.loads(line).get("genres") or []})
    return {"folder": folder, "ids": ids, "genres": genres, "dim": dim}


class Server:
    """`genre-tagger serve` in its own process, on a free port; RSS sampled in a thread."""

    def __init__(self, folder: Path, checkpoint: Path):
        self.started = time.perf_counter()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, "serve", "--manifest", str(folder / "manifest.jsonl"),
             "--tags", str(folder / "tags.jsonl"), "--index", str(folder / "index"), "--checkpoint", str(checkpoint),
             "--port", "0"], stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.ready_line = ""
        self.url = ""
        for line in self.process.stderr:
            if "ready in" in line:
                self.ready_line = line.strip()
            if line.startswith("serve: http://"):
                self.url = line.split()[1].rstrip("/")
                break
        if not self.url:
            raise SystemExit(f"the server did not start (exit {self.process.wait()})")
        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()
        while httpx.get(self.url + "/health").status_code != 200:
            time.sleep(0.05)
        self.startup_s = time.perf_counter() - self.started
        self.ps = psutil.Process(self.process.pid)
        self.rss_ready = self.ps.memory_info().rss
        self.peak = self.rss_ready
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.peak = max(self.peak, self.ps.memory_info().rss)
            except psutil.Error:
                return

    def reset_peak(self) -> None:
        self.peak = self.ps.memory_info().rss

    def stop(self) -> None:
        self._stop.set()
        self.process.terminate()
        self.process.wait(timeout=30)


def request_maker(route: str, catalog: dict, rng: random.Random):
    ids, genres = catalog["ids"], catalog["genres"]
    words = ("red", "night", "river", "glass", "echo", "winter", "band", "trio", "golden", "quiet")

    def filters() -> tuple[str, dict]:
        params: dict = {"limit": 50}
        if rng.random() < 0.7:
            params["genre"] = rng.choice(genres)
        if rng.random() < 0.3:
            params["min_score"] = rng.choice([0.5, 0.6, 0.7, 0.8])
        if rng.random() < 0.15:
            params["status"] = rng.choice(["ok", "error"])
        if rng.random() < 0.15:
            params[rng.choice(["has", "missing"])] = rng.choice(["audio", "cover", "text"])
        if rng.random() < 0.15:
            params["warnings"] = rng.choice(["true", "false"])
        if rng.random() < 0.2:
            params["q"] = rng.choice(words)
        params["sort"] = rng.choice(["manifest", "manifest", "score", "title", "artist"])
        params["offset"] = rng.choice([0, 0, 0, 50, 100, 500])
        return "/api/albums", params

    def album() -> tuple[str, dict]:
        return f"/api/albums/{rng.choice(ids)}", {}

    def similar() -> tuple[str, dict]:
        return f"/api/albums/{rng.choice(ids)}/similar", {"k": 10}

    def text() -> tuple[str, dict]:  # a new text nearly every time: the server keeps recent queries' vectors
        return "/api/search", {"text": f"{rng.choice(QUERIES)}, {rng.choice(MOODS)}, {rng.randint(1950, 2025)}",
                               "k": 10}

    return {"filter": filters, "album": album, "similar": similar, "text": text}[route]


async def load(url: str, make, clients: int, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        for _ in range(max(4, clients)):  # warm-up, not counted
            path, params = make()
            await client.get(path, params=params)
        start = time.perf_counter()
        deadline = start + seconds

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                path, params = make()
                sent = time.perf_counter()
                try:
                    response = await client.get(path, params=params)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - sent)
                errors += not ok

        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--albums", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="per route")
    parser.add_argument("--routes", nargs="+", default=["filter", "album", "similar", "text"],
                        choices=["filter", "album", "similar", "text"])
    parser.add_argument("--checkpoint", default=None, help="model.ckpt with a joint space (default: train one)")
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_work" / "serve_load"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(args.checkpoint) if args.checkpoint else trained_checkpoint(work)
    catalog = make_catalog(work, args.albums, checkpoint.resolve(), args.seed)
    load_before = os.getloadavg()
    server = Server(catalog["folder"], checkpoint.resolve())
    say(f"{server.ready_line}; up after {server.startup_s:.1f} s, RSS {server.rss_ready / 2**20:.0f} MB")
    rows = []
    try:
        for route in args.routes:
            server.reset_peak()
            make = request_maker(route, catalog, random.Random(args.seed))
            latencies, errors, elapsed = asyncio.run(load(server.url, make, args.clients, args.seconds))
            ms = np.array(latencies) * 1000
            rows.append({"route": route, "requests": len(ms), "rps": len(ms) / elapsed,
                         "p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
                         "p99": float(np.percentile(ms, 99)), "max": float(ms.max()), "errors": errors,
                         "peak_rss_mb": server.peak / 2**20})
            say(f"{route}: {rows[-1]['rps']:.0f} req/s, p50 {rows[-1]['p50']:.1f} ms, p99 {rows[-1]['p99']:.1f} ms, "
                f"{errors} errors")
    finally:
        server.stop()
    result = {"albums": args.albums, "clients": args.clients, "seconds": args.seconds, "dim": catalog["dim"],
              "checkpoint": str(checkpoint), "startup_s": server.startup_s, "ready": server.ready_line,
              "rss_ready_mb": server.rss_ready / 2**20, "rows": rows, "cpus": os.cpu_count(),
              "load_before": load_before, "load_after": os.getloadavg(), "machine": platform.platform()}
    (work / "results.json").write_text(json.dumps(result, indent=1))
    print(f"\n{args.albums:,} albums, {args.clients} concurrent clients, {args.seconds:.0f} s per route, "
          f"{os.cpu_count()} CPU cores (load average {load_before[0]:.1f} before, {result['load_after'][0]:.1f} after)\n")
    print("| route | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | server peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['route']} | {row['requests']:,} | {row['rps']:.0f} | {row['p50']:.1f} | {row['p90']:.1f} | "
              f"{row['p99']:.1f} | {row['max']:.0f} | {row['errors']} | {row['peak_rss_mb']:.0f} MB |")
    print(f"\nStart-up: {server.startup_s:.1f} s to the first /health answer ({server.ready_line}); "
          f"RSS once ready: {server.rss_ready / 2**20:.0f} MB.")


if __name__ == "__main__":
    main()
