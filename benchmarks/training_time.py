"""Wall time of `genre-tagger train` (or `ablate`) on a catalog whose embeddings are cached:
what runs after the embedding stage (fusion head, per-subset heads, linear probes, search
space), this code against an earlier commit's, idle and beside busy processes.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training_time.py --manifest CATALOG/manifest.jsonl \
        --baseline-commit COMMIT [--job train|ablate] [--busy 0 1] [--repeats 1] [--workdir DIR]

Each repetition runs the earlier commit's code (its files extracted with ``git archive``, as
``throughput.py`` does) and this code back to back, in that order, with ``--busy`` N processes
spinning on a core each for the whole run (0: the machine otherwise idle). A first run of
`train` with this code fills the embedding cache and is not timed. Prints one markdown
table: median wall seconds per code and load, and their ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spin() -> None:
    while True:
        pass


def run_job(job: str, code: Path, manifest: Path, output: Path) -> float:
    """Seconds of wall time of one ``job`` run by the project files under ``code``."""
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, "-m", "genre_tagger.cli", job, "--manifest", str(manifest), "--output", str(output),
               "--wandb", "disabled", "--quiet"]
    started = time.monotonic()
    with open(output.with_suffix(".log"), "w", encoding="utf-8") as log:
        subprocess.run(command, cwd=code, env={**os.environ, "PYTHONPATH": str(code)}, stdout=log, stderr=log,
                       check=True)
    return time.monotonic() - started


def timed(job: str, code: Path, manifest: Path, output: Path, busy: int) -> float:
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(busy)]
    for process in spinners:
        process.start()
    try:
        return run_job(job, code, manifest, output)
    finally:
        for process in spinners:
            process.terminate()
            process.join()


def main(argv: list[str] | None = None) -> int:
    from throughput import commit_tree

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--baseline-commit", required=True, help="the earlier code to compare with")
    parser.add_argument("--job", choices=("train", "ablate"), default="train")
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes beside the job")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "_work" / "training_time")
    args = parser.parse_args(argv)
    manifest = args.manifest.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    codes = {f"commit {args.baseline_commit}": commit_tree(args.workdir, args.baseline_commit), "this code": ROOT}
    run_job("train", ROOT, manifest, args.workdir / "warm-up")  # fills the embedding cache ablate reads too
    seconds: dict[tuple[int, str], list[float]] = {}
    for busy in args.busy:
        for repeat in range(args.repeats):
            for name, code in codes.items():
                wall = timed(args.job, code, manifest, args.workdir / f"run_{busy}_{repeat}_{code.name}", busy)
                seconds.setdefault((busy, name), []).append(wall)
                print(f"{name}, {busy} busy: {wall:.0f} s", file=sys.stderr, flush=True)
    print(f"`{' '.join(['benchmarks/training_time.py', *(argv if argv is not None else sys.argv[1:])])}`\n")
    before, after = codes
    print(f"| busy processes beside `{args.job}` | {before} (s) | this code (s) | ratio |")
    print("|---|---:|---:|---:|")
    for busy in args.busy:
        old, new = statistics.median(seconds[(busy, before)]), statistics.median(seconds[(busy, after)])
        print(f"| {busy} | {old:.0f} | {new:.0f} | {old / new:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
