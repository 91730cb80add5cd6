"""`train`'s embedding stage on a catalog, once per runtime: wall and CPU time per modality.

The stage `genre-tagger train` runs before the fusion head (the frozen encoders over every
album, written to the embedding cache), built as `train` builds it (the same config, loaders,
tagger, fitted cheap views, embedding settings) and run into a fresh cache per runtime, the
runtimes back to back in one process. CPU time counts this process and its decoding workers.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embedding_stage.py --manifest CATALOG/manifest.jsonl \
        [--runtimes pytorch onnx-float32 default] [--workdir DIR] [--baseline-commit COMMIT]

``--baseline-commit``: first, the same stage with that commit's code and default config (its
files extracted into the workdir, as ``throughput.py`` does; this script run by it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OVERLAYS = {"default": [], "pytorch": ["model/runtime_pytorch"], "onnx-float32": ["model/runtime_onnx_float32"]}


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def embedding_stage(manifest: Path, overlays: list[str], cache_dir: Path) -> dict:
    """``{"wall_s": {m: s}, "cpu_s": total, "albums": N}`` of one embedding stage."""
    from genre_tagger.config import load_config
    from genre_tagger.data.dataset import build_loaders
    from genre_tagger.data.labelled import check_modalities, load_training_data
    from genre_tagger.models.encoders.views import fit_views
    from genre_tagger.models.tagger import build_tagger
    from genre_tagger.training.build import build_parts
    from genre_tagger.training.embedding import embed_catalog

    config = load_config(overlays)
    data = load_training_data(manifest, None, config["seed"])
    modalities = check_modalities(data, config["modalities"])
    loaders = build_loaders(config["data"]["loaders"], modalities)
    tagger = build_tagger(config["model"], modalities, len(data.vocabulary))
    fit_views(tagger.encoders, loaders, [data.records[i] for i in data.splits["train"]], progress=False)
    parts = build_parts(config, data.targets[data.splits["train"]], cache_dir, progress=False)
    seconds: dict[str, float] = {}
    cpu = cpu_seconds()
    embed_catalog(dict(tagger.encoders), loaders, data.records, parts.embedding, seconds)
    return {"wall_s": seconds, "cpu_s": cpu_seconds() - cpu, "albums": len(data.records)}


def baseline_stage(commit: str, manifest: Path, workdir: Path) -> dict:
    """This script's ``default`` row, run by the code of ``commit``."""
    from throughput import commit_tree

    tree = commit_tree(workdir, commit)
    output = workdir / f"baseline_{commit}.json"
    subprocess.run([sys.executable, __file__, "--manifest", str(manifest.resolve()), "--runtimes", "default",
                    "--workdir", str(workdir / f"run_{commit}"), "--json", str(output)],
                   cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, stdout=subprocess.DEVNULL, check=True)
    return json.loads(output.read_text())["default"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--runtimes", nargs="+", choices=list(OVERLAYS), default=list(OVERLAYS))
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "_work" / "embedding_stage")
    parser.add_argument("--baseline-commit", default=None, help="also run the stage with this commit's code, first")
    parser.add_argument("--json", type=Path, default=None, help="also write {runtime: result} here")
    args = parser.parse_args(argv)
    rows = []
    if args.baseline_commit:
        rows.append((f"commit {args.baseline_commit}", baseline_stage(args.baseline_commit, args.manifest, args.workdir)))
    for runtime in args.runtimes:
        cache = args.workdir / f"cache_{runtime}"
        shutil.rmtree(cache, ignore_errors=True)  # a fresh cache: every album is embedded
        started = time.monotonic()
        result = embedding_stage(args.manifest, OVERLAYS[runtime], cache)
        print(f"{runtime}: {time.monotonic() - started:.0f} s with set-up", file=sys.stderr)
        rows.append((runtime, result))
    if args.json:
        args.json.write_text(json.dumps(dict(rows)), encoding="utf-8")
    print(f"`{' '.join(['benchmarks/embedding_stage.py', *(argv if argv is not None else sys.argv[1:])])}`\n")
    modalities = list(rows[0][1]["wall_s"])
    print("| runtime | " + " | ".join(f"{m} (s)" for m in modalities) + " | wall (s) | albums/min | CPU s per album |")
    print("|---|" + "---:|" * (len(modalities) + 3))
    for runtime, result in rows:
        wall = sum(result["wall_s"].values())
        cells = [f"{result['wall_s'][m]:.1f}" for m in modalities]
        print(f"| {runtime} | " + " | ".join(cells) + f" | {wall:.1f} | {result['albums'] / wall * 60:.0f} | "
              f"{result['cpu_s'] / result['albums']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
