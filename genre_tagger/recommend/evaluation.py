"""`genre-tagger evaluate-recommender`: leave-last-out, full ranking, history excluded.

The model and every baseline (popularity, item-kNN, the id-only model) go through the
same ``evaluate_scorer``: same users, same targets, same exclusions, same tie rule.
Cold-start targets are albums that appear in no training event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genre_tagger.cpus import worker_count
from genre_tagger.recommend.baselines import ItemKNN, Popularity
from genre_tagger.recommend.catalog import album_table, recommender_content
from genre_tagger.recommend.fitting import train_one
from genre_tagger.recommend.interactions import Interactions, load_interactions
from genre_tagger.recommend.metrics import Scorer, evaluate_scorer
from genre_tagger.recommend.store import RecommenderBundle, load_recommender
from genre_tagger.runs import say


def model_scorer(bundle: RecommenderBundle, ids: list[str], content: dict, present: dict) -> Scorer:
    table = album_table(ids, {m: content[m] for m in bundle.input_dims},
                        {m: present[m] for m in bundle.input_dims}, bundle.id_vocabulary)
    bundle.model.eval()

    def score(histories: list[list[int]]) -> np.ndarray:
        return bundle.model.score(histories, table).float().numpy()

    return score


def evaluate_bundles(bundle: RecommenderBundle, id_only: RecommenderBundle | None, data: Interactions,
                     content: dict, present: dict, config: dict) -> dict[str, Any]:
    """the recommender metrics (docs/metrics.md) of ``bundle`` on ``data``'s test events, with the baselines
    (popularity, item-kNN with ``config['baselines']['item_knn']``, and ``id_only`` if given)."""
    split = data.split
    histories, targets = split.test_inputs(), split.test_target
    cold = ~split.seen_in_training(data.n_items)[targets]
    training = split.training_sequences()
    knn = config["baselines"]["item_knn"]
    scorers: dict[str, Scorer] = {
        "popularity": Popularity(data.n_items).fit(training),
        "item_knn": ItemKNN(data.n_items, **knn).fit(training),
    }
    if id_only is not None:
        scorers["id_only"] = model_scorer(id_only, data.ids, content, present)
    with torch.no_grad():
        metrics: dict[str, Any] = evaluate_scorer(model_scorer(bundle, data.ids, content, present), histories,
                                                  targets, cold)
        metrics["baselines"] = {name: evaluate_scorer(s, histories, targets, cold) for name, s in scorers.items()}
    metrics["chance_hit_rate_at_10"] = float(np.mean([10.0 / max(1, data.n_items - len(set(h)) + 1)
                                                      for h in histories])) if len(histories) else 0.0
    metrics["n_albums"] = data.n_items
    metrics["modalities"] = list(bundle.modalities)
    metrics["inputs"] = list(bundle.input_dims)
    return metrics


def evaluate_recommender(model: str | Path, manifest: str | Path, events: str | Path, output: str | Path,
                         progress: bool = True) -> dict[str, Any]:
    """The whole command: writes ``output/metrics.json`` and returns it. The id-only baseline
    is ``id_only.ckpt`` beside ``model``, or trained on these events when there is none."""
    bundle = load_recommender(model)
    data = load_interactions(manifest, events)
    workers = worker_count(bundle.config["data"]["num_workers"])
    content, present = recommender_content(bundle, data.records, manifest, workers, progress)
    id_only_path = Path(model).parent / "id_only.ckpt"
    if id_only_path.is_file():
        id_only = load_recommender(id_only_path)
    else:
        say(f"no {id_only_path}: training the id-only baseline on these events")
        id_only, _ = train_one(data, content, present, [], bundle.config, [], progress)
    metrics = evaluate_bundles(bundle, id_only, data, content, present, bundle.config)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics
