"""Quality held by a runtime: one trained model, the same test albums, each encoder runtime.

A runtime changes only the frozen encoders' embeddings, so its quality cost is what the
drift does to a trained model's scores. This loads a checkpoint, embeds the labelled albums
of a split once per runtime (an embedding cache in ``--workdir`` keyed by each encoder's
fingerprint, so the modalities whose runtime does not change are embedded once), and scores
them through the one prediction path. Per runtime: test macro ROC-AUC with the albums as
they are, with only the modality's albums and that modality alone, and the difference to
the first runtime with a 90 % paired bootstrap interval over albums; the embedding drift
(cosine to the first runtime's embedding). Training noise is left out on purpose (the same
weights score both): retrain under each runtime to see it.

``--windows 8 4 3`` compares text window budgets instead (the text loader's ``max_chunks``,
the runtime as the checkpoint has it): what reading fewer windows of long texts costs.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/runtime_quality.py --checkpoint RUN/model.ckpt \
        --manifest CATALOG/manifest.jsonl [--modality text] [--runtimes onnx onnx-int8] [--split test]
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/runtime_quality.py --checkpoint RUN/model.ckpt \
        --manifest CATALOG/manifest.jsonl --windows 8 4 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def learned_views(encoder) -> list:
    """The encoder's networks that offer several runtimes (a MultiView's learned views, or itself)."""
    parts = list(encoder.views.values()) if hasattr(encoder, "views") else [encoder]
    return [part for part in parts if len(getattr(part, "runtimes", ())) > 1]


def set_runtime(bundle, modality: str, runtime: str) -> None:
    views = learned_views(bundle.model.encoders[modality])
    if not views:
        raise SystemExit(f"{modality}: no encoder of this model offers several runtimes")
    for view in views:
        view.set_runtime(runtime)


def cosine_drift(embeddings: np.ndarray, reference: np.ndarray, present: np.ndarray) -> dict[str, float]:
    a, b = embeddings[present], reference[present]
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"mean": float(cos.mean()), "p1": float(np.percentile(cos, 1)), "min": float(cos.min())}


def score_settings(bundle, features: dict, modality: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{setting: (rows, scores [len(rows), L])}``: albums as they are; only ``modality``."""
    n = len(features[modality].present)
    with_it = np.flatnonzero(features[modality].present)
    return {
        "as they are": (np.arange(n), bundle.scores(features)),
        f"{modality} alone": (with_it, bundle.scores(features, modalities=[modality], rows=with_it)),
    }


def run(args: argparse.Namespace) -> dict:
    from genre_tagger.checkpoint import load_checkpoint
    from genre_tagger.data.manifest import read_manifest_reporting
    from genre_tagger.labels import LabelVocabulary
    from genre_tagger.metrics import macro_roc_auc
    from genre_tagger.training.ablation.report import bootstrap_gain

    bundle = load_checkpoint(args.checkpoint)
    records = [r for r in read_manifest_reporting(args.manifest) if r.genres and r.split == args.split]
    targets, _ = LabelVocabulary(bundle.labels).encode(records)
    cache = Path(args.workdir) / "cache"
    results, first = {}, None
    variants = args.runtimes if not args.windows else [f"{n} windows" for n in args.windows]
    for runtime, variant in zip(args.runtimes if not args.windows else [None] * len(variants), variants):
        if runtime is None:
            bundle.loaders["text"].max_chunks = int(variant.split()[0])
        else:
            set_runtime(bundle, args.modality, runtime)
        features = bundle.embed(records, cache, num_workers=args.num_workers, device="cpu")
        settings = score_settings(bundle, features, args.modality)
        entry = {"settings": {}}
        for name, (rows, scores) in settings.items():
            entry["settings"][name] = {"albums": int(len(rows)), "macro_roc_auc": macro_roc_auc(targets[rows], scores)}
            if first is not None:
                low, high = bootstrap_gain(targets[rows], scores, first["scores"][name], rounds=args.rounds)
                entry["settings"][name]["diff"] = entry["settings"][name]["macro_roc_auc"] - \
                    results[variants[0]]["settings"][name]["macro_roc_auc"]
                entry["settings"][name]["interval"] = [low, high]
        if first is None:
            first = {"embeddings": features[args.modality].embeddings,
                     "scores": {name: scores for name, (_, scores) in settings.items()}}
        else:
            entry["drift"] = cosine_drift(features[args.modality].embeddings, first["embeddings"],
                                          features[args.modality].present)
        results[variant] = entry
    return results


def table(results: dict, runtimes: list[str]) -> str:
    settings = list(results[runtimes[0]]["settings"])
    head = "| variant | " + " | ".join(f"{s} (n={results[runtimes[0]]['settings'][s]['albums']})" for s in settings)
    lines = [head + " | drift: cosine mean / 1st pct / min |", "|---|" + "---:|" * (len(settings) + 1)]
    for runtime in runtimes:
        cells = []
        for s in settings:
            row = results[runtime]["settings"][s]
            cell = f"{row['macro_roc_auc']:.4f}"
            if "diff" in row:
                cell += f" ({row['diff']:+.4f} [{row['interval'][0]:+.4f}, {row['interval'][1]:+.4f}])"
            cells.append(cell)
        drift = results[runtime].get("drift")
        cells.append(f"{drift['mean']:.4f} / {drift['p1']:.4f} / {drift['min']:.4f}" if drift else "reference")
        lines.append(f"| {runtime} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--modality", default="text", help="the modality whose runtime changes")
    parser.add_argument("--runtimes", nargs="+", default=["onnx", "onnx-int8"],
                        help="the first is the reference the others are compared with")
    parser.add_argument("--windows", type=int, nargs="+", default=None,
                        help="compare text window budgets (max_chunks) instead of runtimes; the first is the reference")
    parser.add_argument("--split", default="test")
    parser.add_argument("--rounds", type=int, default=300, help="bootstrap rounds")
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_work" / "runtime_quality"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"`{' '.join(['benchmarks/runtime_quality.py', *(argv if argv is not None else sys.argv[1:])])}`\n")
    print(table(results, list(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
