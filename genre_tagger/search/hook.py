"""What `genre-tagger train` adds to ``model.ckpt`` for search: the training hook named in
``configs/default.yaml`` (``after_training: {search: ...}``), which fits the joint space on the
run's cached embeddings and returns its payload (``payload.py``) for ``bundle.extra``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genre_tagger.bundle import TaggerBundle
from genre_tagger.config import deep_merge, instantiate, read_yaml
from genre_tagger.data.records import AlbumRecord
from genre_tagger.runs import say
from genre_tagger.search.combine import best_weight_score, metrics_at, protocol_vectors
from genre_tagger.search.data import (DescriptionEmbeddings, JointData, album_side, embed_descriptions, joint_data,
                                      text_side)
from genre_tagger.search.fit import JointSettings, fit_joint_space
from genre_tagger.search.payload import joint_payload
from genre_tagger.search.text_view import fit_text_view, view_features
from genre_tagger.search.weights import select_genre_weights

DEFAULTS = "search/joint.yaml"


def search_config(config: dict) -> dict:
    """The shipped ``configs/search/joint.yaml`` overlaid by the run config's ``search`` section."""
    return deep_merge(read_yaml(DEFAULTS)["search"], config.get("search") or {})


def fit_view(bundle: TaggerBundle, records: list[AlbumRecord], splits: dict[str, np.ndarray], settings: dict,
             progress: bool = True):
    """The joint space's text view (``search.text_view``) fitted on the training albums' texts."""
    train = [records[i] for i in splits["train"]]
    return fit_text_view(bundle.loaders[text_side(bundle)], train, settings["text_view"], progress)


def search_data(bundle: TaggerBundle, records: list[AlbumRecord], splits: dict[str, np.ndarray],
                cache_dir: Path | None, source, view, progress: bool = True) -> JointData:
    """Embeddings of every record (cached), the view's vectors of their texts and of the
    training albums' generated descriptions (``source``; None: none), and the genre scores."""
    text = text_side(bundle)
    features = bundle.embed(records, cache_dir, progress=progress)
    loader = bundle.loaders[text]
    descriptions = (embed_descriptions(view, loader, records, splits["train"], source, cache_dir, progress)
                    if source is not None else DescriptionEmbeddings.empty(view.out_dim))
    return joint_data(bundle, features, view_features(view, loader, records, cache_dir, progress),
                      [r.genres for r in records], splits, album_side(bundle), text, descriptions)


def _not_fitted(reason: str) -> tuple[dict, dict]:
    say(f"note: no joint search space: {reason}")
    return {}, {"skipped": reason}


def train_joint_space(bundle: TaggerBundle, records: list[AlbumRecord], splits: dict[str, np.ndarray],
                      cache_dir: Path | None, progress: bool = True) -> tuple[dict, dict]:
    """The training hook: ``(checkpoint extra, report for metrics.json)``; empty extra when
    search is switched off or impossible (said on stderr: the tagger is saved either way)."""
    settings = search_config(bundle.config)
    if not settings.get("enabled", True):
        return {}, {"skipped": "search.enabled is false"}
    if text_side(bundle) is None or not album_side(bundle):
        return _not_fitted("the joint search space needs a text modality and at least one other")
    if not settings.get("text_view"):
        return _not_fitted("search.text_view is not set (the joint space's text side reads it)")
    try:
        fit = JointSettings.from_config(settings.get("fit"), seed=bundle.config.get("seed", 0))
    except (TypeError, ValueError) as err:
        return _not_fitted(str(err))
    source = instantiate(settings["descriptions"]) if settings.get("descriptions") else None
    say("search: fitting the joint album/text space on cached embeddings")
    view = fit_view(bundle, records, splits, settings, progress)
    data = search_data(bundle, records, splits, cache_dir, source, view, progress)
    try:
        space, report = fit_joint_space(data, fit, progress, val_score=best_weight_score(data, splits["val"], fit))
    except ValueError as err:  # e.g. no training album with both an album side and a text
        return _not_fitted(str(err))
    weights, report["genre_weights_tried"] = select_genre_weights(space, data, splits["val"])
    report["val"] = metrics_at(protocol_vectors(space, data, splits["val"]), weights.album, weights.text)
    report["genre_weight"], report["text_genre_weight"] = weights.album, weights.text
    report["descriptions"] = int(len(data.descriptions.owner))
    return {"joint_space": joint_payload(space, view, weights.album, settings.get("index"), weights.text)}, report
