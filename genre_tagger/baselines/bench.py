"""The reference on a manifest, exactly as `train`/`ablate` split and label it (for benchmarks)."""

from __future__ import annotations

from pathlib import Path

from genre_tagger.baselines.reference import ReferenceResult, run_reference
from genre_tagger.config import load_config
from genre_tagger.data.dataset import build_loaders


def reference_for_manifest(manifest: str | Path, config_files: list[str] | None = None,
                           modalities: tuple[str, ...] = ("audio", "image", "text"), eval_split: str = "test",
                           progress: bool = False) -> ReferenceResult:
    """Same records, label vocabulary (train genres), splits and seed as ``train`` uses."""
    from genre_tagger.training.data import load_training_data

    config = load_config(config_files)
    data = load_training_data(manifest, None, config["seed"])
    usable = [m for m in modalities if any(data.records[i].has_modality(m) for i in data.splits["train"])]
    loaders = build_loaders(config["data"]["loaders"], [m for m in usable if m != "text"])
    return run_reference(data.records, data.targets, data.splits, loaders, usable, eval_split=eval_split,
                         num_workers=config["data"]["num_workers"], progress=progress)
