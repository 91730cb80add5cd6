"""Which musicnn layer (and model) to use as the audio embedding: a linear probe per layer.

    .venv/bin/python benchmarks/musicnn_probe.py --manifest CATALOG/manifest.jsonl [--patches-per-track 2]

Every album with audio is read once with ``MusicnnAudioLoader`` (evaluation crops), both
published models run once over its patches, and each layer's album vector (mean over
patches) feeds a one-vs-rest logistic regression trained on ``split=train`` and scored on
``split=test`` (macro ROC-AUC / PR-AUC over labels with positives and negatives among the
test albums that have audio). In the same run, the simple reference: the mean and standard
deviation of each of the 96 log-mel bands over the same patches (192 features), same probe.
Features are cached next to the output, so a re-run only re-fits the probes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from genre_tagger.data.manifest import iter_manifest
from genre_tagger.pretrained.loader import MusicnnAudioLoader
from genre_tagger.pretrained.weights import load_musicnn

LAYERS = {"taggram": ["taggram"], "penultimate": ["penultimate"], "pooled (mid-end max+mean)": ["pooled"],
          "penultimate+taggram": ["penultimate", "taggram"]}


def extract(records, patches_per_track: int) -> dict[str, np.ndarray]:
    loader = MusicnnAudioLoader(patches_per_track=patches_per_track, max_tracks=4)
    nets = {name: load_musicnn(name) for name in ("mtt", "msd")}
    out: dict[str, list] = {"baseline": []}
    keep, seconds = [], 0.0
    for index, record in enumerate(tqdm(records, desc="musicnn features", unit="album")):
        item, _ = loader.load(record)
        if item is None:
            continue
        keep.append(index)
        out["baseline"].append(torch.cat([item.mean(dim=(0, 2)), item.std(dim=2).mean(dim=0)]).numpy())
        started = time.perf_counter()
        with torch.no_grad():
            for name, net in nets.items():
                features = net.features(item)
                for layer in ("taggram", "penultimate", "pooled"):
                    out.setdefault(f"{name}/{layer}", []).append(features[layer].mean(dim=0).numpy())
        seconds += time.perf_counter() - started
    arrays = {key: np.stack(values) for key, values in out.items()}
    arrays["rows"] = np.array(keep)
    arrays["network_seconds"] = np.array(seconds)
    return arrays


def probe(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, c: float) -> tuple[float, float]:
    scaler = StandardScaler().fit(x[train])
    xtr, xte = scaler.transform(x[train]), scaler.transform(x[test])
    usable = [j for j in range(y.shape[1]) if 0 < y[train, j].sum() < len(train) and 0 < y[test, j].sum() < len(test)]
    rocs, prs = [], []
    for j in usable:
        model = LogisticRegression(C=c, max_iter=2000).fit(xtr, y[train, j])
        scores = model.decision_function(xte)
        rocs.append(roc_auc_score(y[test, j], scores))
        prs.append(average_precision_score(y[test, j], scores))
    return float(np.mean(rocs)), float(np.mean(prs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--patches-per-track", type=int, default=2)
    parser.add_argument("--c", type=float, default=0.05, help="inverse L2 strength of the probes")
    args = parser.parse_args()
    records = [r for r, _ in iter_manifest(args.manifest) if r is not None]
    cache = Path(args.manifest).with_name(f"musicnn_probe_features_{args.patches_per_track}.npz")
    if cache.is_file():
        arrays = dict(np.load(cache))
    else:
        arrays = extract(records, args.patches_per_track)
        np.savez(cache, **arrays)
    rows = arrays["rows"]
    kept = [records[i] for i in rows]
    labels = sorted({g for r in kept if r.split == "train" for g in (r.genres or [])})
    y = np.array([[g in (r.genres or []) for g in labels] for r in kept], dtype=int)
    train = np.array([i for i, r in enumerate(kept) if r.split == "train"])
    test = np.array([i for i, r in enumerate(kept) if r.split == "test"])
    print(f"{len(kept)} albums with audio ({len(train)} train, {len(test)} test), {len(labels)} labels; "
          f"{args.patches_per_track} patches per track; both networks: {float(arrays['network_seconds']):.0f} s")
    print("\n| audio features (linear probe) | dim | test macro ROC-AUC | test macro PR-AUC |\n|---|---:|---:|---:|")
    roc, pr = probe(arrays["baseline"], y, train, test, args.c)
    print(f"| simple: log-mel band means + stds | {arrays['baseline'].shape[1]} | {roc:.3f} | {pr:.3f} |")
    results = {"baseline": (roc, pr)}
    for model in ("mtt", "msd"):
        for name, parts in LAYERS.items():
            x = np.concatenate([arrays[f"{model}/{p}"] for p in parts], axis=1)
            roc, pr = probe(x, y, train, test, args.c)
            results[f"{model}/{name}"] = (roc, pr)
            print(f"| musicnn {model.upper()} {name} | {x.shape[1]} | {roc:.3f} | {pr:.3f} |")
    Path(args.manifest).with_name("musicnn_probe.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
