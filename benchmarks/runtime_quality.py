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
or ``10x64`` for 10 windows of 64 tokens; the runtime as the checkpoint has it): what
reading less of long texts costs. ``--patches 2 1`` compares musicnn's patch budget per
album (its ``max_patches``; the descriptors beside it read what they read), ``--crops 2 1``
the audio loader's patches per track (what every audio view reads), ``--cover-sizes 224 192``
the side length covers are resized to (what every cover view reads). Each budget embeds into its
own cache folder.

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


def text_budget(spec: str, max_tokens: int, stride: int):
    """``"8"`` or ``"10x64"`` (windows x tokens; tokens default to the checkpoint's ``max_tokens``)
    -> a function setting the text loader's budget."""
    chunks, _, tokens = spec.partition("x")
    tokens = int(tokens) if tokens else max_tokens

    def apply(bundle) -> None:
        loader = bundle.loaders["text"]
        loader.max_chunks, loader.max_tokens, loader.stride = int(chunks), tokens, min(stride, tokens // 4)
        loader.tagging_max_chunks = None  # the budget compared, whatever the checkpoint tags with
    return apply


def patch_budget(patches: int):
    """-> a function setting musicnn's patches per album (the audio encoder's learned view)."""
    def apply(bundle) -> None:
        for view in learned_views(bundle.model.encoders["audio"]):
            view.max_patches = patches
    return apply


def crop_budget(per_track: int):
    """-> a function setting how many patches the audio loader reads per track (every audio view's input)."""
    def apply(bundle) -> None:
        loader = bundle.loaders["audio"]
        loader.patches_per_track = loader.crops_per_track = per_track
    return apply


def cover_budget(size: int):
    """-> a function setting the side length covers are resized to (every cover view's input)."""
    def apply(bundle) -> None:
        bundle.loaders["image"].size = size
    return apply


def budget_variants(args: argparse.Namespace, bundle) -> tuple[str, dict]:
    """The modality scored alone and ``{variant name: apply(bundle)}`` for ``--windows``,
    ``--patches``, ``--crops`` or ``--cover-sizes``; ``(args.modality, {})`` when runtimes are compared."""
    if args.windows:
        text = bundle.loaders["text"]
        return "text", {f"{spec} windows": text_budget(spec, text.max_tokens, text.stride) for spec in args.windows}
    if args.patches:
        return "audio", {f"{n} musicnn patches": patch_budget(n) for n in args.patches}
    if args.crops:
        return "audio", {f"{n} patches per track": crop_budget(n) for n in args.crops}
    if args.cover_sizes:
        return "image", {f"covers at {n} px": cover_budget(n) for n in args.cover_sizes}
    return args.modality, {}


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
    modality, budgets = budget_variants(args, bundle)
    variants = list(budgets) if budgets else args.runtimes
    for variant in variants:
        if budgets:
            budgets[variant](bundle)
            variant_cache = cache / "".join(c if c.isalnum() else "_" for c in variant)
        else:
            set_runtime(bundle, modality, variant)
            variant_cache = cache
        features = bundle.embed(records, variant_cache, num_workers=args.num_workers, device="cpu")
        settings = score_settings(bundle, features, modality)
        entry = {"settings": {}}
        for name, (rows, scores) in settings.items():
            entry["settings"][name] = {"albums": int(len(rows)), "macro_roc_auc": macro_roc_auc(targets[rows], scores)}
            if first is not None:
                low, high = bootstrap_gain(targets[rows], scores, first["scores"][name], rounds=args.rounds)
                entry["settings"][name]["diff"] = entry["settings"][name]["macro_roc_auc"] - \
                    results[variants[0]]["settings"][name]["macro_roc_auc"]
                entry["settings"][name]["interval"] = [low, high]
        if first is None:
            first = {"embeddings": features[modality].embeddings,
                     "scores": {name: scores for name, (_, scores) in settings.items()}}
        else:
            entry["drift"] = cosine_drift(features[modality].embeddings, first["embeddings"],
                                          features[modality].present)
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
    parser.add_argument("--windows", nargs="+", default=None,
                        help="compare text window budgets instead of runtimes: max_chunks, or CHUNKSxTOKENS "
                             "(e.g. 10x64); the first is the reference")
    parser.add_argument("--patches", type=int, nargs="+", default=None,
                        help="compare musicnn patch budgets per album instead of runtimes; the first is the reference")
    parser.add_argument("--crops", type=int, nargs="+", default=None,
                        help="compare the audio loader's patches per track instead of runtimes; the first is the reference")
    parser.add_argument("--cover-sizes", type=int, nargs="+", default=None,
                        help="compare cover sizes (px) instead of runtimes; the first is the reference")
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
