"""Tagging throughput and memory with musicnn as the audio encoder vs the default config.

    .venv/bin/python benchmarks/musicnn_throughput.py [--albums 300] [--time-limit 240]

Same albums and method as ``benchmarks/throughput.py`` (whose helpers it reuses): MuMu-like
albums (4 x 30 s 44.1 kHz stereo mp3, a cover, 3 reviews), ``genre-tagger tag`` as a
subprocess with the default batch size and 2 decoding workers, checkpoints with untrained
trainable parts (speed does not depend on weights). One run per config, back to back, so
that the ratios hold on a shared machine even when the absolute figures do not. Also the
zero-shot tagger (``pretrained:musicnn-msd``, every patch of every track).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import ROOT, decode_floor, make_checkpoint, make_manifest, make_media, say, tag_end_to_end  # noqa: E402

CONFIGS = {
    "default (MelCNN)": [],
    "musicnn frozen, 2 patches/track": ["model/audio_musicnn.yaml"],
    "musicnn frozen, 1 patch/track": ["model/audio_musicnn.yaml", "PATCH1"],
}


def overlay_files(work: Path, names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name == "PATCH1":
            path = work / "one_patch.yaml"
            path.write_text("data: {loaders: {audio: {init_args: {patches_per_track: 1}}}}\n")
            out.append(str(path))
        else:
            out.append(name)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_work" / "throughput"))
    parser.add_argument("--albums", type=int, default=300)
    parser.add_argument("--distinct", type=int, default=24)
    parser.add_argument("--time-limit", type=float, default=240)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="config names to run (default: all)")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    media = make_media(work / "media", args.distinct)
    manifest = make_manifest(media, args.albums)
    results = {"decode_floor": decode_floor(make_manifest(media, 48), 2), "runs": {}}
    runs = [(name, names) for name, names in CONFIGS.items() if not args.only or name in args.only]
    for name, names in runs:
        checkpoint = make_checkpoint(work / f"musicnn_bench_{len(results['runs'])}.ckpt", n_labels=250,
                                     overlays=overlay_files(work, names))
        say(f"tagging with {name} ...")
        results["runs"][name] = tag_end_to_end(checkpoint, manifest, work / f"musicnn_tags_{len(results['runs'])}.jsonl",
                                               32, 2, args.time_limit, args.threads)
        say(json.dumps(results["runs"][name]))
    if not args.only or "zero-shot" in args.only:
        say("zero-shot pretrained:musicnn-msd ...")
        results["runs"]["zero-shot musicnn-msd (all patches)"] = tag_end_to_end(
            "pretrained:musicnn-msd", manifest, work / "musicnn_zero_shot.jsonl", 32, 2, args.time_limit, args.threads)
    (work / "musicnn_results.json").write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
