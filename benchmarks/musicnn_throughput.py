"""Tagging cost with musicnn as the audio encoder vs the default config, on MuMu-like albums.

    .venv/bin/python benchmarks/musicnn_throughput.py                  # audio stage costs, in-process
    .venv/bin/python benchmarks/musicnn_throughput.py --end-to-end     # + `genre-tagger tag` runs (idle machine)

Albums as in ``benchmarks/throughput.py`` (whose helpers this reuses): 4 x 30 s 44.1 kHz
stereo mp3, a cover, 3 reviews.

- In-process (default): CPU seconds per album of the audio branch only (loader: decode,
  resample, log-mel; encoder forward on torch's threads), per config, on the same albums.
  CPU time, unlike wall time, barely depends on what else runs on a shared machine. The
  estimate for a whole ``tag`` run swaps the audio branch's cost into the default config's
  measured total (``--default-cpu-s``, from RESULTS.md's end-to-end run on the idle machine)
  at the cores it used (``--cores``).
- ``--end-to-end``: ``genre-tagger tag`` as a subprocess per config, back to back (see
  ``throughput.tag_end_to_end``), plus the zero-shot tagger (``--no-zero-shot`` skips it).

``--only N ...`` keeps the configs of those numbers (0 = the default; the order of
``CONFIGS``); ``--no-in-process`` skips the in-process costs (end-to-end runs only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import ROOT, make_checkpoint, make_manifest, make_media, say, tag_end_to_end  # noqa: E402

CONFIGS = {
    "default (musicnn on 2 of 8 patches + descriptors on all 8; cover and text views; probes)": [],
    "plain (MelCNN, 2 crops/track; the earlier default)": ["model/plain.yaml"],
    "musicnn, 2 patches/track (max 8)": ["model/audio_musicnn.yaml"],
    "musicnn, album budget 4 patches": ["model/audio_musicnn.yaml", "BUDGET4"],
    "musicnn, album budget 2 patches": ["model/audio_musicnn.yaml", "BUDGET2"],
}


def overlay_files(work: Path, names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name.startswith("BUDGET"):
            path = work / f"{name.lower()}.yaml"
            path.write_text(f"data: {{loaders: {{audio: {{init_args: {{album_patches: {int(name[6:])}}}}}}}}}\n")
            out.append(str(path))
        else:
            out.append(name)
    return out


def audio_costs(overlays: list[str], records: list) -> dict[str, float]:
    """CPU s per album: loader (1 torch thread, as in a DataLoader worker) and encoder."""
    from genre_tagger.config import instantiate, load_config

    config = load_config(overlays)
    loader = instantiate(config["data"]["loaders"]["audio"])
    encoder = instantiate(config["model"]["encoders"]["audio"])
    encoder.freeze()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loader.load(records[0])  # warm caches (resampler kernels)
    started, items = time.process_time(), [loader.load(r)[0] for r in records]
    load_s = (time.process_time() - started) / len(records)
    torch.set_num_threads(threads)
    batch = loader.collate(items[:8])
    encoder.encode(loader.collate(items[:1]))
    started = time.process_time()
    for start in range(0, len(items), 8):
        encoder.encode(loader.collate(items[start:start + 8]))
    encode_s = (time.process_time() - started) / len(items)
    crops = float(sum(item.shape[0] for item in items) / len(items))
    del batch
    return {"loader_cpu_s": load_s, "encoder_cpu_s": encode_s, "audio_cpu_s": load_s + encode_s,
            "crops_per_album": crops}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_work" / "throughput"))
    parser.add_argument("--albums", type=int, default=24, help="albums measured in-process")
    parser.add_argument("--default-cpu-s", type=float, default=0.59,
                        help="the default config's measured CPU s per album, whole tag run (RESULTS.md)")
    parser.add_argument("--cores", type=float, default=1.8, help="cores that run used on the 2-core box")
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--e2e-albums", type=int, default=300)
    parser.add_argument("--time-limit", type=float, default=240)
    parser.add_argument("--only", type=int, nargs="+", default=None, help="numbers of the configs to run (0 = default)")
    parser.add_argument("--no-in-process", action="store_true")
    parser.add_argument("--no-zero-shot", action="store_true")
    args = parser.parse_args()
    chosen = {name: names for i, (name, names) in enumerate(CONFIGS.items()) if args.only is None or i in args.only}
    from genre_tagger.data.manifest import iter_manifest

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    media = make_media(work / "media", 24)
    records = [r for r, _ in iter_manifest(make_manifest(media, args.albums)) if r is not None]
    results: dict = {"in_process": {}, "end_to_end": {}}
    base = None
    if not args.no_in_process:
        print("| config | patches (crops) per album | audio loader CPU s | audio encoder CPU s | "
              "est. tag CPU s per album | est. albums/min (2 cores) |\n|---|---:|---:|---:|---:|---:|")
    for name, names in ({} if args.no_in_process else CONFIGS).items():
        costs = audio_costs(overlay_files(work, names), records)
        base = base if base is not None else costs["audio_cpu_s"]
        total = args.default_cpu_s - base + costs["audio_cpu_s"]
        costs.update(est_tag_cpu_s=total, est_albums_per_min=60 * args.cores / total)
        results["in_process"][name] = costs
        print(f"| {name} | {costs['crops_per_album']:.1f} | {costs['loader_cpu_s']:.3f} | {costs['encoder_cpu_s']:.3f} | "
              f"{total:.2f} | {costs['est_albums_per_min']:.0f} |", flush=True)
    if args.end_to_end:
        manifest = make_manifest(media, args.e2e_albums)
        for index, (name, names) in enumerate(CONFIGS.items()):
            if name not in chosen:
                continue
            checkpoint = make_checkpoint(work / f"musicnn_bench_{index}.ckpt", n_labels=250,
                                         overlays=overlay_files(work, names), fit_manifest=media)
            before = [round(x, 2) for x in os.getloadavg()]
            say(f"tagging with {name} ... (load average before: {before})")
            results["end_to_end"][name] = tag_end_to_end(checkpoint, manifest, work / f"musicnn_tags_{index}.jsonl",
                                                         32, 2, args.time_limit, None)
            results["end_to_end"][name]["load_avg_before"] = before
            print(name, json.dumps(results["end_to_end"][name], default=str), flush=True)
        if not args.no_zero_shot:
            results["end_to_end"]["zero-shot musicnn-msd"] = tag_end_to_end(
                "pretrained:musicnn-msd", manifest, work / "musicnn_zero_shot.jsonl", 32, 2, args.time_limit, None)
        print(json.dumps(results["end_to_end"], indent=1, default=str))
    (work / "musicnn_results.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
