"""Tagging throughput on MuMu-like albums, end to end (manifest in, tags out), on this machine.

What it measures, in one run:

1. **End to end**: ``genre-tagger tag`` as a subprocess (CLI, default batch size and
   workers) over manifests of N albums with the DEFAULT config's architecture (musicnn +
   EfficientNet-Lite0 + MiniLM, each with its cheap view, and the linear probes): albums
   per minute and audio seconds per second, both over the whole run (startup included) and in steady state (first to last album written).
2. **Decode-only floor**: ``genre_tagger.data.audio.decode_full`` of the same audio (every
   track of every album, whole files), in as many processes as the tagger has workers.
3. **Peak memory** of the whole process tree (tagger + DataLoader workers), sampled every
   0.5 s with psutil: summed RSS (double-counts pages the forked workers share with
   the parent) and summed PSS (shared pages split fairly: the honest total).
4. **Stage breakdown** in-process on one batch: manifest parsing, audio decode (crops),
   resample + log-mel, cover load, tokenization, each encoder, fusion + head, writing.

Albums: ``write_catalog`` with 4 tracks of 30 s (44.1 kHz stereo mp3), a cover, 3 reviews
of 180-220 words, nothing missing. Generating thousands of such albums takes hours here,
so ``--distinct`` albums are rendered once and the N-album manifests repeat them under
distinct ids (tagging cost is per album; the files are in the page cache either way).

The checkpoint is built from ``configs/default.yaml`` with untrained weights for the
trained parts (fusion, head, probes; the frozen musicnn, EfficientNet-Lite0 and MiniLM come
with their pretrained weights from their packages): tagging speed does not depend on weights.

Usage (results go to stdout as Markdown tables, and to WORKDIR/results.json)::

    .venv/bin/python benchmarks/throughput.py --sizes 1000 5000 --time-limit 600
    # what benchmarks/RESULTS.md reports (time-boxed on a shared machine):
    .venv/bin/python benchmarks/throughput.py --sizes 1000 5000 --time-limit 360 240 \
        --memory-sizes 1000 5000 --memory-time-limit 150 --floor-albums 100
    # stage costs only:
    .venv/bin/python benchmarks/throughput.py --runtimes pytorch default --sizes --memory-sizes --floor-albums 8
    # the frozen encoders on PyTorch eager and on the default runtimes (ONNX Runtime), back to
    # back on the same albums (each size: one run per runtime, in the order given):
    .venv/bin/python benchmarks/throughput.py --runtimes pytorch default --sizes 1000 --time-limit 300 \
        --memory-sizes --floor-albums 100

Today's code against an earlier commit's (its files extracted with ``git archive`` into the
workdir; that code builds and tags its own default model), first in each size, same albums::

    .venv/bin/python benchmarks/throughput.py --baseline-commit 1f8b942 --runtimes default --sizes 600 \
        --time-limit 200 --memory-sizes --floor-albums 100

``--runtimes`` names configs of the same model: ``default`` (configs/default.yaml),
``pytorch`` (+ model/runtime_pytorch.yaml), ``onnx-float32`` (+ model/runtime_onnx_float32.yaml).
ONNX files are exported before any timed run (the stage breakdown's warm-up builds them,
once per machine, under ~/.cache/genre_tagger/onnx).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import psutil

from genre_tagger.runs.ranks import say

ROOT = Path(__file__).resolve().parent.parent
MEDIA_ARGS = dict(track_seconds=30.0, sample_rate=44100, channels=2, audio_formats=("mp3",),
                  tracks_per_album=(4, 4), texts_per_album=(3, 3), review_words=(180, 220),
                  missing_rates={"audio": 0.0, "image": 0.0, "text": 0.0}, text_file_share=0.0)
SAMPLE_SECONDS = 0.5
RUNTIMES = {"default": [], "pytorch": ["model/runtime_pytorch.yaml"], "onnx-float32": ["model/runtime_onnx_float32.yaml"]}


# --------------------------------------------------------------------------- inputs


def make_media(folder: Path, distinct: int, seed: int = 0) -> Path:
    """Render ``distinct`` MuMu-like albums once (cached by arguments)."""
    from genre_tagger.data.synthetic import write_catalog

    stamp = folder / "params.json"
    params = {"distinct": distinct, "seed": seed, **{k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in MEDIA_ARGS.items()}}
    manifest = folder / "manifest.jsonl"
    if manifest.exists() and stamp.exists() and json.loads(stamp.read_text()) == params:
        return manifest
    say(f"rendering {distinct} albums (4 x 30 s stereo mp3, cover, 3 reviews) into {folder}")
    manifest = write_catalog(folder, n_albums=distinct, seed=seed, progress=True, **MEDIA_ARGS)
    stamp.write_text(json.dumps(params))
    return manifest


def make_manifest(media_manifest: Path, n_albums: int) -> Path:
    """N albums cycling over the rendered ones, each under its own id (extra fields kept)."""
    base = [json.loads(line) for line in media_manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    path = media_manifest.with_name(f"bench_{n_albums}.jsonl")
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n_albums):
            album = dict(base[i % len(base)], id=f"bench{i:06d}", source_album=base[i % len(base)]["id"])
            out.write(json.dumps(album) + "\n")
    return path


def make_checkpoint(path: Path, n_labels: int, overlays: list[str] | None = None,
                    fit_manifest: Path | None = None) -> Path:
    """The config's model (default config unless ``overlays``) with untrained trainable parts:
    tagging speed does not depend on the weights. Fitted views (the tf-idf vocabulary) are
    fitted on ``fit_manifest``'s albums, so that they tag as a trained model's would. The
    file name carries a digest of the config: a changed default never reuses a stale file."""
    import hashlib

    import numpy as np

    from genre_tagger.bundle import TaggerBundle
    from genre_tagger.checkpoint import save_checkpoint
    from genre_tagger.config import load_config
    from genre_tagger.data.dataset import build_loaders
    from genre_tagger.data.manifest import read_manifest
    from genre_tagger.models.encoders.views import fit_views
    from genre_tagger.models.tagger import build_tagger

    config = load_config(overlays)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]
    path = path.with_name(f"{path.stem}_{digest}{path.suffix}")
    if path.exists():
        return path
    modalities = list(config["modalities"])
    model = build_tagger(config["model"], modalities, n_labels)
    loaders = build_loaders(config["data"]["loaders"], modalities)
    if fit_manifest is not None:
        fit_views(model.encoders, loaders, read_manifest(fit_manifest)[0])
    for encoder in model.encoders.values():
        encoder.freeze()
    labels = [f"genre_{i:03d}" for i in range(n_labels)]
    save_checkpoint(path, TaggerBundle(model.eval(), loaders, labels, np.full(n_labels, 0.5), config))
    return path


# --------------------------------------------------------------------------- decode floor


def _decode_seconds(path: str) -> tuple[float, float]:
    """CPU seconds to decode one whole file, and its duration in seconds."""
    from genre_tagger.data.audio import decode_full

    start = time.process_time()
    samples, rate = decode_full(path)
    return time.process_time() - start, len(samples) / rate


def decode_floor(manifest: Path, processes: int) -> dict[str, float]:
    """Wall time to fully decode every track the manifest names, in ``processes`` processes."""
    files = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        files += [str(manifest.parent / p) for p in json.loads(line)["audio"]]
    start = time.perf_counter()
    with Pool(processes) as pool:
        results = pool.map(_decode_seconds, files, chunksize=16)
    wall = time.perf_counter() - start
    albums = len(manifest.read_text().splitlines())
    return {"albums": albums, "files": len(files), "wall_s": wall, "audio_s": sum(r[1] for r in results),
            "cpu_s_per_file": sum(r[0] for r in results) / len(files)}


# --------------------------------------------------------------------------- end to end


class TreeSampler(threading.Thread):
    """Samples the process tree's summed RSS and PSS, and the output's line count."""

    def __init__(self, pid: int, journal: Path):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.journal = journal
        self.samples: list[tuple[float, int, int, int]] = []  # (t, lines, rss, pss)
        self.cpu: list[tuple[float, int, float]] = []  # (t, lines, CPU seconds of the tree so far)
        self._child_cpu: dict[int, float] = {}  # last CPU time seen per child (workers may end first)
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            rss = pss = 0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for proc in procs:
                try:
                    info = proc.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            lines = _count_lines(self.journal)
            now = time.monotonic() - start
            self.samples.append((now, lines, rss, pss))
            self.cpu.append((now, lines, self._tree_cpu(procs)))
            self.stop.wait(SAMPLE_SECONDS)


    def _tree_cpu(self, procs: list) -> float:
        """User + system CPU seconds of the root and every child seen so far."""
        for proc in procs[1:]:
            try:
                times = proc.cpu_times()
                self._child_cpu[proc.pid] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        try:
            times = self.root.cpu_times()
            self._own_cpu = times.user + times.system
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            pass  # the tagger has exited: its last reading stands (0 would make the CPU per album negative)
        return getattr(self, "_own_cpu", 0.0) + sum(self._child_cpu.values())


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def commit_tree(work: Path, commit: str) -> Path:
    """The project's files at ``commit`` (``git archive``), under ``work``: an earlier code to
    tag with, on the same albums and machine as today's."""
    tree = work / f"tree_{commit}"
    if not (tree / "genre_tagger").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def commit_checkpoint(tree: Path, work: Path, media: Path) -> Path:
    """That code's default model, untrained, built by that code's own ``make_checkpoint``."""
    code = ("import sys; from pathlib import Path; sys.path.insert(0, 'benchmarks'); "
            "from throughput import make_checkpoint; "
            "print(make_checkpoint(Path(sys.argv[1]), 250, fit_manifest=Path(sys.argv[2])))")
    done = subprocess.run([sys.executable, "-c", code, str(work / f"{tree.name}_untrained.ckpt"), str(media)],
                          cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                          check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def tag_end_to_end(checkpoint: Path, manifest: Path, output: Path, batch_size: int, num_workers: int,
                   time_limit: float, threads: int | None, tree: Path | None = None) -> dict[str, Any]:
    """Run the CLI (of the code in ``tree`` when given); stop it with SIGINT (clean,
    resumable) after ``time_limit`` seconds."""
    for stale in (output, output.with_name(output.name + ".lock")):
        stale.unlink(missing_ok=True)
    args = [sys.executable, "-m", "genre_tagger.cli", "tag", "--checkpoint", str(checkpoint),
            "--manifest", str(manifest), "--output", str(output), "--batch-size", str(batch_size),
            "--num-workers", str(num_workers)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.monotonic()
    log = output.with_suffix(".log")
    with open(log, "w") as stderr:
        # SIGINT must reach the tagger even when this script runs in the background (where it is ignored).
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=tree or ROOT,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        sampler = TreeSampler(process.pid, output)
        sampler.start()
        try:
            stdout, _ = process.communicate(timeout=time_limit)
            stopped = False
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            stdout, _ = process.communicate(timeout=120)
            stopped = True
        wall = time.monotonic() - start
        sampler.stop.set()
        sampler.join()
    stats = _run_stats(sampler.samples, wall, _count_lines(output), stopped, stdout.strip(), process.returncode)
    stats.update(_cpu_stats(sampler.cpu))
    stats["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    return stats


def _cpu_stats(cpu: list[tuple[float, int, float]]) -> dict[str, Any]:
    """CPU seconds per album while albums were being written (startup excluded): what the
    run costs whatever else shares the machine; 2 cores give at most 2 CPU s per second."""
    busy = [c for c in cpu if c[1] > 0]
    if len(busy) < 2 or busy[-1][1] == busy[0][1]:
        return {"cpu_s_per_album_steady": None, "startup_cpu_s": busy[0][2] if busy else None}
    (t0, n0, c0), (t1, n1, c1) = busy[0], busy[-1]
    return {"cpu_s_per_album_steady": (c1 - c0) / (n1 - n0), "cpu_share_steady": (c1 - c0) / (t1 - t0),
            "startup_cpu_s": c0}


def _run_stats(samples: list, wall: float, albums: int, stopped: bool, stdout: str, rc: int) -> dict[str, Any]:
    first = next((t for t, lines, _, _ in samples if lines > 0), None)
    last_t, last_lines = next(((t, n) for t, n, _, _ in reversed(samples)), (wall, albums))
    steady = (last_lines - _lines_at(samples, first)) / (last_t - first) if first and last_t > first else None
    quarters = {}
    for share in (0.25, 0.5, 0.75, 1.0):
        upto = [s for s in samples if s[1] <= share * max(albums, 1)]
        if upto:
            quarters[f"{int(share * 100)}%"] = {"rss_mb": max(s[2] for s in upto) / 2**20,
                                                "pss_mb": max(s[3] for s in upto) / 2**20}
    return {
        "albums": albums, "wall_s": wall, "stopped_at_time_limit": stopped, "exit_code": rc,
        "startup_s": first, "albums_per_min_overall": 60 * albums / wall,
        "albums_per_min_steady": 60 * steady if steady else None,
        "peak_rss_mb": max((s[2] for s in samples), default=0) / 2**20,
        "peak_pss_mb": max((s[3] for s in samples), default=0) / 2**20,
        "peak_by_progress": quarters, "final_line": stdout.splitlines()[-1] if stdout else "",
    }


def _lines_at(samples: list, t: float) -> int:
    return next((n for s_t, n, _, _ in samples if s_t >= t), 0)


# --------------------------------------------------------------------------- stage breakdown


def stage_breakdown(checkpoint: Path, manifest: Path, n_albums: int, threads: int | None) -> dict[str, float]:
    """Seconds per album of each stage on one batch of ``n_albums``, in this process.

    Loaders and encoders run single-threaded, as in ``tag``'s DataLoader workers on a CPU
    (``threads`` overrides the encoders'). Audio decode vs. mel uses AudioLoader's internal steps.
    """
    import torch

    from genre_tagger.checkpoint import load_checkpoint
    from genre_tagger.data.dataset import AlbumCollator
    from genre_tagger.data.manifest import iter_manifest
    from genre_tagger.tagging import RecordBuilder
    from genre_tagger.tagging.journal import dumps

    cost: dict[str, float] = {}  # CPU seconds (all threads of this process): robust to other tenants
    wall: dict[str, float] = {}

    def timed(name: str, fn, *args):
        start, start_wall = time.process_time(), time.perf_counter()
        result = fn(*args)
        cost[name] = cost.get(name, 0.0) + time.process_time() - start
        wall[name] = wall.get(name, 0.0) + time.perf_counter() - start_wall
        return result

    records = [r for r, _ in timed("manifest parse", lambda: list(iter_manifest(manifest))[:n_albums])]
    bundle = load_checkpoint(checkpoint)
    loaders = bundle.loaders
    torch.set_num_threads(1)
    audio = loaders["audio"]
    items: dict[str, list] = {m: [] for m in loaders}
    for record in records:
        items["audio"].append(timed("audio load (decode crops + resample + log-mel)", audio.load, record)[0])
        for path in record.audio[: audio.max_tracks]:
            # The split between decoding and mel uses the loader's internals (may change with it).
            waves, rate = timed("  of which: decode crops", audio._read_track, path, None)[:2]
            timed("  of which: resample + log-mel", lambda w=waves, r=rate: audio.log_mel(
                audio._resample(torch.from_numpy(w), r)))
        items["image"].append(timed("cover decode + resize", loaders["image"].load, record)[0])
        items["text"].append(timed("text tokenize", loaders["text"].load, record)[0])
    torch.set_num_threads(threads or 1)
    batch = {m: loaders[m].collate(items[m]) for m in loaders}
    model = bundle.model.eval()
    with torch.inference_mode():
        for name, encoder in model.encoders.items():
            encoder(batch[name])  # warm-up (first-call allocations)
        embeddings = {}
        for name, encoder in model.encoders.items():
            embeddings[name] = timed(f"encoder {name} ({type(encoder).__name__})", encoder, batch[name])
        present = {m: batch[m]["present"] for m in model.modalities}
        logits = timed("fusion + head", model.logits_from_embeddings, embeddings, present)
    builder = RecordBuilder(bundle.labels, bundle.thresholds, bundle.modalities)
    meta = [{"id": r.id, "line": r.line, "extra": r.extra, "declared": ["audio", "image", "text"]} for r in records]
    scores = torch.sigmoid(logits).numpy()

    def build_and_serialise():
        out = [builder.album(m, scores[i], list(bundle.modalities), []) for i, m in enumerate(meta)]
        return "".join(dumps(r) for r in out)

    timed("records + JSON", build_and_serialise)
    per_album = {name: (cost[name] / len(records), wall[name] / len(records)) for name in cost}
    per_album["(text chunks per album)"] = (float(batch["text"]["chunk_mask"].sum()) / len(records), 0.0)
    return per_album


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    import torch

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "load_avg_1m_5m_15m": [round(x, 2) for x in os.getloadavg()],
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}


def markdown(results: dict[str, Any]) -> str:
    floor = results["decode_floor"]
    floor_per_album = floor["wall_s"] / floor["albums"]
    floor_cpu_per_album = floor["cpu_s_per_file"] * floor["files"] / floor["albums"]
    audio_per_album = floor["audio_s"] / floor["albums"]
    lines = ["| runtimes | catalog | albums tagged | wall (s) | startup (s) | albums/min overall | albums/min steady | "
             "audio s/s steady | x decode floor (wall) | CPU s per album | x decode floor (CPU) | cores used | "
             "peak RSS sum (MB) | peak PSS (MB) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, run in results["runs"].items():
        runtime, size = key.rsplit(" ", 1)
        steady = run["albums_per_min_steady"] or 0
        floor_time = floor_per_album * run["albums"]
        ratio = run["wall_s"] / floor_time if floor_time else float("nan")
        lines.append(f"| {runtime} | {size} | {run['albums']}{' (stopped)' if run['stopped_at_time_limit'] else ''} | "
                     f"{run['wall_s']:.0f} | {run['startup_s'] or 0:.1f} | {run['albums_per_min_overall']:.0f} | "
                     f"{steady:.0f} | {steady / 60 * audio_per_album:.0f} | {ratio:.1f} | "
                     f"{run.get('cpu_s_per_album_steady') or float('nan'):.2f} | "
                     f"{(run.get('cpu_s_per_album_steady') or float('nan')) / floor_cpu_per_album:.1f} | "
                     f"{run.get('cpu_share_steady') or float('nan'):.2f} | "
                     f"{run['peak_rss_mb']:.0f} | {run['peak_pss_mb']:.0f} |")
    if results.get("memory_runs"):
        lines += ["", "Memory vs catalog size, tiny model (configs/experiment/tiny.yaml), same media:", "",
                  "| catalog | albums tagged | wall (s) | albums/min | peak RSS sum (MB) | peak PSS (MB) | "
                  "PSS peak at 25/50/75/100% (MB) |", "|---|---|---|---|---|---|---|"]
        for size, run in results["memory_runs"].items():
            curve = "/".join(f"{q['pss_mb']:.0f}" for q in run["peak_by_progress"].values())
            lines.append(f"| {size} | {run['albums']} | {run['wall_s']:.0f} | {run['albums_per_min_overall']:.0f} | "
                         f"{run['peak_rss_mb']:.0f} | {run['peak_pss_mb']:.0f} | {curve} |")
    lines += ["", f"Decode-only floor: {floor['files']} files ({floor['audio_s']:.0f} s of audio, "
              f"{floor['albums']} albums) in {floor['wall_s']:.1f} s with {results['workers']} processes = "
              f"{floor_per_album * 1000:.0f} ms per album ({60 / floor_per_album:.0f} albums/min); "
              f"{floor_cpu_per_album * 1000:.0f} CPU ms of decoding per album.", "",
              f"Load average before / after: {results['machine']['load_avg_1m_5m_15m']} / "
              f"{results['machine_after']['load_avg_1m_5m_15m']} (2 cores; other jobs shared the machine).", "",
              f"Stage costs per album (one batch of {results['batch_size']}, in-process, on 1 thread as in "
              f"tag's workers unless --threads), CPU ms / wall ms per album:", ""]
    stages = results["stages"]
    names = list(stages)
    lines += ["| stage | " + " | ".join(f"{n}: CPU ms | {n}: wall ms" for n in names) + " |",
              "|---|" + "---|---|" * len(names)]
    for stage in stages[names[0]]:
        cells = [stages[n].get(stage, (float("nan"), float("nan"))) for n in names]
        lines.append(f"| {stage} | " + " | ".join(
            f"{cpu:.1f} | " if stage.startswith("(") else f"{cpu * 1000:.1f} | {wall * 1000:.1f}"
            for cpu, wall in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_work" / "throughput"))
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000],
                        help="catalog sizes for the end-to-end runs with the default model (none: skip)")
    parser.add_argument("--distinct", type=int, default=24, help="albums actually rendered (reused)")
    parser.add_argument("--time-limit", type=float, nargs="+", default=[600],
                        help="seconds per tagging run, one per size (the last repeats); then SIGINT stops it cleanly")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the tagger (default: torch's)")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[1000, 5000],
                        help="catalog sizes for the memory-scaling runs with the tiny model (fast, run to the end)")
    parser.add_argument("--floor-albums", type=int, default=1000, help="albums whose audio the floor decodes")
    parser.add_argument("--memory-time-limit", type=float, default=None,
                        help="seconds per memory-scaling run (default: --time-limit)")
    parser.add_argument("--runtimes", nargs="+", choices=list(RUNTIMES), default=["default"],
                        help="the frozen encoders' runtimes to compare, back to back on the same albums")
    parser.add_argument("--baseline-commit", default=None,
                        help="also tag with the default model of this commit's code, first, on the same albums")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    media = make_media(work / "media", args.distinct)
    checkpoints = {runtime: make_checkpoint(work / "default_untrained.ckpt", n_labels=250, fit_manifest=media,
                                            overlays=RUNTIMES[runtime]) for runtime in args.runtimes}
    results: dict[str, Any] = {"machine": machine(), "workers": args.num_workers, "batch_size": args.batch_size,
                               "threads": args.threads, "distinct_albums": args.distinct, "runs": {}, "stages": {}}
    trees = {}
    if args.baseline_commit:
        tree = commit_tree(work, args.baseline_commit)
        trees[f"commit {args.baseline_commit}"] = tree
        checkpoints = {f"commit {args.baseline_commit}": commit_checkpoint(tree, work, media), **checkpoints}
    for runtime, checkpoint in checkpoints.items():  # first: its warm-up exports the ONNX files
        if runtime in trees:
            continue  # in-process stages only for this code
        say(f"stage breakdown ({runtime}) ...")
        results["stages"][runtime] = stage_breakdown(checkpoint, make_manifest(media, args.batch_size),
                                                     args.batch_size, args.threads)
    say("decode-only floor ...")
    results["decode_floor"] = decode_floor(make_manifest(media, args.floor_albums), max(args.num_workers, 1))
    for position, size in enumerate(args.sizes):
        limit = args.time_limit[min(position, len(args.time_limit) - 1)]
        manifest = make_manifest(media, size)
        for runtime, checkpoint in checkpoints.items():
            say(f"tagging {size} albums, runtimes {runtime} (time limit {limit:.0f} s) ...")
            key = f"{runtime} {size}"
            results["runs"][key] = tag_end_to_end(checkpoint, manifest, work / f"tags_{runtime.replace(' ', '_')}_{size}.jsonl",
                                                  args.batch_size, args.num_workers, limit, args.threads,
                                                  trees.get(runtime))
            say(json.dumps(results["runs"][key]))
    if args.memory_sizes:
        tiny = make_checkpoint(work / "tiny_untrained.ckpt", n_labels=250, overlays=["experiment/tiny.yaml"])
        results["memory_runs"] = {}
        for size in args.memory_sizes:
            say(f"memory scaling: tiny model, {size} albums ...")
            results["memory_runs"][size] = tag_end_to_end(
                tiny, make_manifest(media, size), work / f"tiny_{size}.jsonl", args.batch_size, args.num_workers,
                args.memory_time_limit or args.time_limit[-1], args.threads)
            say(json.dumps(results["memory_runs"][size]))
    results["machine_after"] = machine()
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
