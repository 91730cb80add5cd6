"""The reference on a manifest, exactly as `train`/`ablate` split and label it (for benchmarks)."""

from __future__ import annotations

from pathlib import Path

from genre_tagger.baselines.reference import TEXT, ReferenceResult, run_reference
from genre_tagger.config import load_config
from genre_tagger.cpus import worker_count
from genre_tagger.data.dataset import build_loaders
from genre_tagger.data.modalities import modality_names

# The reference reads audio and covers its own fixed way (the classic loaders' defaults: 64-band
# log-mel, 2 crops of 3 s per track, at most 4 tracks; covers at 224 px), whatever the model's
# config: a model config that reads less audio must not weaken the reference it is judged by.
REFERENCE_LOADERS = {
    "audio": {"class_path": "genre_tagger.data.audio.AudioLoader", "init_args": {}},
    "image": {"class_path": "genre_tagger.data.image.ImageLoader", "init_args": {}},
}


def reference_for_manifest(manifest: str | Path, config_files: list[str] | None = None,
                           modalities: tuple[str, ...] | None = None, eval_split: str = "test",
                           progress: bool = False) -> ReferenceResult:
    """Same records, label vocabulary (train genres), splits and seed as ``train`` uses; the
    config gives the seed and decoding workers, not the loaders (``REFERENCE_LOADERS``).
    ``modalities``: default every registered one the reference can read."""
    from genre_tagger.data.labelled import load_training_data

    config = load_config(config_files)
    data = load_training_data(manifest, None, config["seed"])
    modalities = modalities or [m for m in modality_names() if m in REFERENCE_LOADERS or m == TEXT]
    usable = [m for m in modalities if any(data.records[i].has_modality(m) for i in data.splits["train"])]
    loaders = build_loaders(REFERENCE_LOADERS, [m for m in usable if m != TEXT])
    return run_reference(data.records, data.targets, data.splits, loaders, usable, eval_split=eval_split,
                         num_workers=worker_count(config["data"]["num_workers"]), progress=progress)
