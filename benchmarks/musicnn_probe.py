"""Which musicnn layer to use as the audio embedding: a linear probe per layer, from the cache.

    # 1. embed the catalog with every layer at once (the ablation of the same run):
    genre-tagger ablate --manifest M --output DIR --config model/audio_musicnn --config ALL.yaml
    #    where ALL.yaml = model: {encoders: {audio: {init_args: {model: msd, layer: pooled+penultimate+taggram}}}}
    # 2. probe each layer on those cached embeddings (no network runs again):
    .venv/bin/python benchmarks/musicnn_probe.py --manifest M --config model/audio_musicnn --config ALL.yaml

The album vectors (mean over patches of each layer) are sliced out of the cached
concatenation; each slice feeds a one-vs-rest logistic regression (standardised inputs,
L2, ``--c``) trained on ``split=train`` and scored on ``split=test``: macro ROC-AUC / PR-AUC
over the labels with positives and negatives among the test albums that have audio. In the
same run, the simple reference: each of the 96 log-mel bands' mean and standard deviation
over the same patches (192 features), same probe.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from genre_tagger.config import instantiate, load_config
from genre_tagger.runs import default_cache_dir
from genre_tagger.models.encoders.base import build_encoder
from genre_tagger.data.manifest import iter_manifest
from genre_tagger.features import encoder_fingerprint, extract_features
from genre_tagger.models.encoders.musicnn import WIDTHS


def layer_slices(layer: str, n_classes: int = 50) -> dict[str, np.ndarray]:
    """Column indices of each probed view inside the cached ``layer`` concatenation."""
    columns, start = {}, 0
    for name in layer.split("+"):
        width = n_classes if name == "taggram" else WIDTHS[name]
        columns[name] = np.arange(start, start + width)
        start += width
    if "pooled" in columns:
        columns["max_pool (mid-end)"] = columns["pooled"][0::2]
        columns["mean_pool (mid-end)"] = columns["pooled"][1::2]
    if "penultimate" in columns and "taggram" in columns:
        columns["penultimate+taggram"] = np.concatenate([columns["penultimate"], columns["taggram"]])
    columns["all concatenated"] = np.arange(start)
    return columns


# Catalog genres (MuMu names) and the musicnn tag with the same meaning, for the zero-shot check.
SAME_MEANING = {
    "msd": {"Pop": "pop", "Rock": "rock", "Jazz": "jazz", "Metal": "metal", "Heavy Metal": "heavy metal",
            "Folk": "folk", "Country": "country", "Blues": "blues", "Electronica": "electronica",
            "Dance & Electronic": "electronic", "Punk": "punk", "Soul": "soul", "Funk": "funk", "House": "House",
            "Rap & Hip-Hop": "Hip-Hop", "Classic Rock": "classic rock", "Alternative Rock": "alternative rock",
            "Easy Listening": "easy listening", "R&B": "rnb"},
    "mtt": {"Classical": "classical", "Opera": "opera", "Metal": "metal", "Rock": "rock", "Pop": "pop",
            "Country": "country", "New Age": "new age", "Dance & Electronic": "electronic", "House": "techno"},
}


def zero_shot_aucs(taggram: np.ndarray, kept, model: str) -> dict[str, float]:
    """ROC-AUC of musicnn's own tag score at ranking the albums labelled with the same genre."""
    from genre_tagger.pretrained.weights import MODELS

    tags = list(MODELS[model].labels)
    out = {}
    for genre, tag in SAME_MEANING[model].items():
        y = np.array([genre in (r.genres or []) for r in kept])
        if 0 < y.sum() < len(y):
            out[f"{genre} ~ {tag}"] = float(roc_auc_score(y, taggram[:, tags.index(tag)]))
    return out


def band_statistics(loader, records) -> np.ndarray:
    """The simple reference: mean and std over time of each log-mel band, averaged over patches."""
    rows = []
    for record in records:
        item, _ = loader.load(record)
        rows.append(np.zeros(192) if item is None else
                    torch.cat([item.mean(dim=(0, 2)), item.std(dim=2).mean(dim=0)]).numpy())
    return np.stack(rows)


def probe(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, c: float) -> tuple[float, float]:
    scaler = StandardScaler().fit(x[train])
    xtr, xte = scaler.transform(x[train]), scaler.transform(x[test])
    rocs, prs = [], []
    for j in range(y.shape[1]):
        if not (0 < y[train, j].sum() < len(train) and 0 < y[test, j].sum() < len(test)):
            continue
        scores = LogisticRegression(C=c, max_iter=3000).fit(xtr, y[train, j]).decision_function(xte)
        rocs.append(roc_auc_score(y[test, j], scores))
        prs.append(average_precision_score(y[test, j], scores))
    return float(np.mean(rocs)), float(np.mean(prs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--cache-dir", default=None, help="default: <manifest folder>/.genre_tagger_cache")
    parser.add_argument("--c", type=float, default=0.05, help="inverse L2 strength of the probes")
    args = parser.parse_args()
    config = load_config(args.config)
    records = [r for r, _ in iter_manifest(args.manifest) if r is not None]
    loader = instantiate(config["data"]["loaders"]["audio"])
    spec = config["model"]["encoders"]["audio"]
    encoder = build_encoder(spec)
    cache = default_cache_dir(args.cache_dir, args.manifest)
    features = extract_features(records, loader, encoder, cache,
                                batch_size=8, num_workers=2, device="cpu", progress=True)
    keep = np.flatnonzero(features.present)
    kept = [records[i] for i in keep]
    labels = sorted({g for r in kept if r.split == "train" for g in (r.genres or [])})
    y = np.array([[g in (r.genres or []) for g in labels] for r in kept], dtype=int)
    train = np.array([i for i, r in enumerate(kept) if r.split == "train"])
    test = np.array([i for i, r in enumerate(kept) if r.split == "test"])
    model = spec["init_args"].get("model", "msd").upper()
    print(f"{len(kept)} albums with audio ({len(train)} train, {len(test)} test), {len(labels)} labels, "
          f"musicnn {model}, loader {loader.settings()}")
    print("\n| audio features (linear probe) | dim | test macro ROC-AUC | test macro PR-AUC |\n|---|---:|---:|---:|")
    results = {}
    stats_file = Path(args.manifest).with_name("musicnn_probe_band_stats.npy")
    if stats_file.is_file():
        baseline = np.load(stats_file)
    else:
        baseline = band_statistics(loader, kept)
        np.save(stats_file, baseline)
    results["simple: log-mel band means + stds"] = (baseline.shape[1], *probe(baseline, y, train, test, args.c))
    embeddings = features.embeddings[keep]
    for name, columns in layer_slices(spec["init_args"]["layer"]).items():
        results[f"musicnn {model} {name}"] = (len(columns), *probe(embeddings[:, columns], y, train, test, args.c))
    for name, (dim, roc, pr) in results.items():
        print(f"| {name} | {dim} | {roc:.3f} | {pr:.3f} |")
    columns = layer_slices(spec["init_args"]["layer"])
    zero_shot = {}
    if "taggram" in columns:
        zero_shot = zero_shot_aucs(embeddings[:, columns["taggram"]], kept, model.lower())
        print(f"\nZero-shot: musicnn {model}'s own tag as a score for the catalog genre of the same name "
              f"(ROC-AUC over all {len(kept)} albums with audio; 0.5 = no relation):")
        print("; ".join(f"{k} {v:.2f}" for k, v in zero_shot.items()),
              f"-- mean {np.mean(list(zero_shot.values())):.3f}" if zero_shot else "")
    out = Path(args.manifest).with_name(f"musicnn_probe_{model.lower()}.json")
    out.write_text(json.dumps({"probes": results, "zero_shot": zero_shot}, indent=1))


if __name__ == "__main__":
    main()
