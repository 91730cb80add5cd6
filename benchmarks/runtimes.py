"""Each frozen encoder on each runtime, on the same decoded albums: CPU time and embedding drift.

For the learned view of every modality of the default config (musicnn, EfficientNet-Lite0,
MiniLM) and every runtime it offers (``pytorch``, ``onnx``, ``onnx-int8``): CPU ms per album
(this process, all its threads; repetitions interleaved across runtimes so that other jobs
on the machine weigh on each alike) and the ratio to PyTorch eager measured in the same
run; drift: cosine of each album's embedding to float32 PyTorch's (mean, 1st percentile,
min) and the largest absolute difference.

    .venv/bin/python benchmarks/runtimes.py --manifest CATALOG/manifest.jsonl [--albums 64] [--threads 1]
        [--modalities audio image text]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch


def decoded_batches(manifest: Path, albums: int, batch_size: int,
                    modalities: list[str] | None = None) -> tuple[dict, list[dict]]:
    from genre_tagger.config import load_config
    from genre_tagger.data.dataset import build_loaders
    from genre_tagger.data.manifest import read_manifest
    from genre_tagger.models.encoders.base import build_encoder

    config = load_config([])
    records = read_manifest(manifest)[0][:albums]
    loaders = build_loaders(config["data"]["loaders"], list(config["modalities"]))
    encoders = {m: build_encoder(spec["init_args"]["views"]["learned"])
                for m, spec in config["model"]["encoders"].items() if m in (modalities or config["modalities"])}
    batches = []
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        batches.append({m: loaders[m].collate([loaders[m].load(r)[0] for r in chunk]) for m in encoders})
    return encoders, batches


def measure(encoder, batches: list[dict], modality: str, repeats: int) -> dict[str, dict]:
    """``{runtime: {"cpu_s": [...], "out": [N, D]}}`` over ``batches``, repetitions interleaved."""
    results = {runtime: {"cpu_s": []} for runtime in encoder.runtimes}
    for runtime in encoder.runtimes:  # warm-up: exports, first-call allocations
        encoder.runtime = runtime
        with torch.inference_mode():
            encoder(batches[0][modality])
    for _ in range(repeats):
        for runtime in encoder.runtimes:
            encoder.runtime = runtime
            with torch.inference_mode():
                start = time.process_time()
                out = torch.cat([encoder(batch[modality]) for batch in batches])
                results[runtime]["cpu_s"].append(time.process_time() - start)
            results[runtime]["out"] = out.float().numpy()
    return results


def drift(out: np.ndarray, reference: np.ndarray, present: np.ndarray) -> dict[str, float]:
    a, b = out[present], reference[present]
    cosine = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"cos_mean": float(cosine.mean()), "cos_p1": float(np.percentile(cosine, 1)),
            "cos_min": float(cosine.min()), "max_abs": float(np.abs(a - b).max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--albums", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modalities", nargs="+", default=["audio", "image", "text"])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    encoders, batches = decoded_batches(args.manifest, args.albums, args.batch_size, args.modalities)
    rows, report = [], {}
    for modality, encoder in encoders.items():
        present = torch.cat([b[modality]["present"] for b in batches]).numpy()
        results = measure(encoder, batches, modality, args.repeats)
        base = float(np.median(results["pytorch"]["cpu_s"]))
        for runtime, result in results.items():
            cpu = float(np.median(result["cpu_s"]))
            stats = drift(result["out"], results["pytorch"]["out"], present)
            report[f"{modality} {runtime}"] = {"cpu_ms_per_album": 1000 * cpu / len(present),
                                               "speedup": base / cpu, **stats}
            rows.append(f"| {type(encoder).__name__} | {runtime} | {1000 * cpu / len(present):.1f} | "
                        f"{base / cpu:.2f} | {stats['cos_mean']:.5f} | {stats['cos_p1']:.5f} | "
                        f"{stats['cos_min']:.5f} | {stats['max_abs']:.2g} |")
    print(f"{len(present)} albums of {args.manifest}; torch threads {args.threads} (ONNX Runtime: the same); "
          f"median of {args.repeats} interleaved repetitions; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs\n")
    print("| encoder | runtime | CPU ms per album | x PyTorch | cosine mean | cosine 1st pct | cosine min | max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
