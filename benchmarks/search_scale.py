"""Search at scale: FAISS query latency and memory on random unit vectors, and
index build throughput of `genre-tagger index` on a real (synthetic) catalog.

    .venv/bin/python benchmarks/search_scale.py [--sizes 10000 100000 1000000] [--dim 378]
    .venv/bin/python benchmarks/search_scale.py --index-checkpoint RUN/model.ckpt --index-manifest M

Latency: single queries (batch 1, one thread, as `search` runs them), top 10, p50/p99 over
--queries queries; builds use every thread. Memory: the serialised index size and the growth of the process' RSS while
building it. Recall@10 of the approximate index against the exact one on the same queries
(random vectors are the hardest case for an inverted file: no clusters to exploit).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import psutil

from genre_tagger.search import faiss_index


def rss() -> int:
    return psutil.Process().memory_info().rss


def unit(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray | None = None) -> np.ndarray:
    """Random unit vectors; with ``centres``, each one a centre plus noise of the same norm
    (clusters, as albums of a genre are, with cosine ~0.5 to their centre)."""
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        part = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        if centres is not None:
            part += centres[rng.integers(len(centres), size=len(part))]
            part /= np.linalg.norm(part, axis=1, keepdims=True)
        out[start:start + len(part)] = part
    return out


def latencies(index, queries: np.ndarray) -> np.ndarray:
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None, :], 10)
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def one_size(n: int, dim: int, kinds: list[str], n_queries: int, clusters: int) -> list[str]:
    threads = faiss.omp_get_max_threads()
    rng = np.random.default_rng(n)
    centres = unit(clusters, dim, rng) if clusters else None
    vectors, queries = unit(n, dim, rng, centres), unit(n_queries, dim, rng, centres)
    rows, exact = [], None
    for kind in kinds:
        before, started = rss(), time.monotonic()
        sample = vectors[rng.choice(n, min(n, 64 * faiss_index.n_lists(n)), replace=False)] if kind == "ivf" else None
        index = faiss_index.build(kind, dim, n, iter([vectors]), sample)
        build_s, grown = time.monotonic() - started, rss() - before
        size = len(faiss.serialize_index(index))
        probes = [faiss_index.n_probe(n), 4 * faiss_index.n_probe(n)] if kind == "ivf" else [None]
        for probe in probes:
            name = faiss_index.describe(kind, n).split(" (")[0]
            if probe is not None:
                index.nprobe = probe
                name = f"IVF, {faiss_index.n_lists(n)} lists, {probe} probed"
            faiss.omp_set_num_threads(1)
            ms = latencies(index, queries)
            faiss.omp_set_num_threads(threads)
            _, found = index.search(queries, 10)
            if kind == "flat":
                exact = found
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]) if exact is not None else np.nan
            rows.append(f"| {n:,} | {name} | {np.percentile(ms, 50):.2f} | {np.percentile(ms, 99):.2f} | "
                        f"{size / 2**20:.0f} | {grown / 2**20:.0f} | {build_s:.1f} | {recall:.3f} |")
            print(rows[-1], file=sys.stderr)
        del index
    return rows


def build_throughput(checkpoint: str, manifest: str, workers: int) -> str:
    from genre_tagger.search.index import build_index

    folder = Path(tempfile.mkdtemp(prefix="search_index_"))
    load = os.getloadavg()[0]
    try:
        started, cpu = time.monotonic(), _cpu_seconds()
        summary = build_index(checkpoint, manifest, folder / "index", num_workers=workers, progress=False)
        seconds, cpu = time.monotonic() - started, _cpu_seconds() - cpu
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    albums = summary["new"] + summary["errors"]
    return (f"`index` of {albums} albums ({manifest}): {seconds:.0f} s wall, {60 * albums / seconds:.0f} albums/min "
            f"({workers} decoding workers, model load included); {cpu:.0f} CPU-seconds in all, i.e. "
            f"{2 * 60 * albums / cpu:.0f} albums/min on 2 fully available cores; load average {load:.1f} at the start")


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (decoding workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=378,
                        help="vector width: the search vectors are joint (128) + genre scores (one per label: 250)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--kinds", nargs="+", default=["flat", "ivf", "hnsw"])
    parser.add_argument("--hnsw-up-to", type=int, default=100_000, help="HNSW builds slowly on 2 cores")
    parser.add_argument("--index-checkpoint")
    parser.add_argument("--index-manifest")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clusters", type=int, default=0, help="clustered vectors around this many centres (0: uniform)")
    args = parser.parse_args()
    lines = [f"Load average at the start: {', '.join(f'{v:.1f}' for v in os.getloadavg())}. "
             f"FAISS {faiss.__version__}, builds on {faiss.omp_get_max_threads()} threads, single queries on 1, "
             f"dim {args.dim}, top 10, {args.queries} queries per row, "
             f"{f'vectors in {args.clusters} clusters' if args.clusters else 'uniform random unit vectors'}.", "",
             "| albums | index | p50 ms | p99 ms | index MB | RSS growth MB | build s | recall@10 vs exact |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for n in args.sizes:
        kinds = [k for k in args.kinds if k != "hnsw" or n <= args.hnsw_up_to]
        lines += one_size(n, args.dim, kinds, args.queries, args.clusters)
    if args.index_checkpoint:
        lines += ["", build_throughput(args.index_checkpoint, args.index_manifest, args.workers)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
