"""`genre-tagger train-recommender`: the sequence model on leave-last-out training events.

A run directory holds ``recommender.ckpt``, ``id_only.ckpt`` (the same model without
album content: the id-only baseline), ``tagger.ckpt`` (a copy of the tagger whose
encoders give album content), ``config.yaml``, ``metrics.json`` (validation, and the
test metrics with every baseline, as `evaluate-recommender` computes them, plus the
training summary under ``training``) and ``logs/``. The folder is the core's run folder
(``genre_tagger.runs``): an earlier run is never overwritten, and only rank 0 writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.config import dump_yaml
from genre_tagger.cpus import worker_count
from genre_tagger.data.modalities import parse_modalities
from genre_tagger.errors import UserInputError
from genre_tagger.recommend.catalog import content_features, model_inputs
from genre_tagger.recommend.evaluation import evaluate_bundles
from genre_tagger.recommend.fitting import load_recommend_config, train_one
from genre_tagger.recommend.interactions import Interactions, load_interactions
from genre_tagger.recommend.model import GENRES
from genre_tagger.recommend.store import save_recommender
from genre_tagger.runs import default_cache_dir, is_global_zero, prepare_run_dir, release_run_dir, say
from genre_tagger.tracking import RunTracker


def train_recommender(
    checkpoint: str | Path, manifest: str | Path, events: str | Path, output: str | Path,
    modalities: str | list[str] | None = None, config_files: list[str] | None = None,
    wandb_mode: str | None = None, progress: bool = True,
) -> dict[str, Any]:
    """The whole `train-recommender` command; returns what ``metrics.json`` holds.

    ``checkpoint``: the tagger, loaded once; ``modalities``: a subset of its modalities
    (None = all of them, ``"none"`` = id only).
    """
    config = load_recommend_config(config_files)
    if wandb_mode:
        config["logger"]["wandb"]["mode"] = wandb_mode
    if not Path(checkpoint).is_file():
        raise UserInputError(f"tagger checkpoint not found: {checkpoint}")
    tagger = load_checkpoint(checkpoint)
    config["modalities"] = parse_modalities(modalities, tagger.modalities, allow_none=True)
    data = load_interactions(manifest, events)
    run_dir = prepare_run_dir(output)
    try:
        return _train(tagger, Path(checkpoint), manifest, data, run_dir, config, progress)
    finally:
        release_run_dir(run_dir)


def _describe(modalities: list[str], config: dict) -> str:
    inputs = model_inputs(modalities, config["model"])
    return ", ".join("genre scores" if m == GENRES else f"{m} embeddings" for m in inputs) or "none"


def _train(tagger: TaggerBundle, checkpoint: Path, manifest: str | Path, data: Interactions, run_dir: Path,
           config: dict, progress: bool) -> dict[str, Any]:
    writer = is_global_zero()
    if writer:
        dump_yaml(config, run_dir / "config.yaml")  # snapshot before anything long runs
    modalities = config["modalities"]
    content, present = content_features(tagger, data.records, modalities,
                                        default_cache_dir(config["data"]["cache_dir"], manifest),
                                        worker_count(config["data"]["num_workers"]), progress,
                                        genre_scores=config["model"]["genre_scores"])
    tracker = RunTracker(run_dir, config["logger"], run_name=run_dir.name, config=config,
                         tags=["recommender", *modalities], enabled=writer)
    try:
        say(f"training the recommender on {len(data.split.users)} users, {data.n_items} albums "
            f"(content: {_describe(modalities, config)}; modalities read: {', '.join(modalities) or 'none'})")
        bundle, summary = train_one(data, content, present, modalities, config, tracker.loggers, progress)
        bundle.tagger = run_dir / "tagger.ckpt"
        if writer:
            shutil.copyfile(checkpoint, bundle.tagger)
            save_recommender(run_dir / "recommender.ckpt", bundle)
        id_only = None
        if config["baselines"]["id_only"]:
            say("training the id-only baseline (the same model without album content)")
            id_only, summary["id_only"] = train_one(data, content, present, [], config, [], progress)
            if writer:
                save_recommender(run_dir / "id_only.ckpt", id_only)
        metrics = evaluate_bundles(bundle, id_only, data, content, present, config)
        metrics["training"] = summary
        if writer:
            (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        tracker.log_summary({k: v for k, v in metrics.items() if not isinstance(v, dict)}, prefix="test/")
        for name, values in metrics["baselines"].items():
            tracker.log_summary(values, prefix=f"baseline_{name}/")
    finally:
        tracker.finish()
    return metrics
