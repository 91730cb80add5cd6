"""The catalog's album content, from the tagger (a ``TaggerBundle``): its frozen modality
embeddings (``bundle.embed``, through the shared embedding cache, so they are computed
once per album and encoder and reused from `train` when it cached them) and its genre
scores computed from them (``bundle.scores``, under the content key ``GENRES``).

Content is a pair of dicts keyed by input name (a modality, or ``GENRES``):
``content[k] [N, D_k]`` float32 and ``present[k] [N]`` bool, albums in manifest order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.data.records import AlbumRecord
from genre_tagger.features import ModalityFeatures
from genre_tagger.recommend.model import GENRES, AlbumTable
from genre_tagger.recommend.store import RecommenderBundle
from genre_tagger.runs import default_cache_dir

Content = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def model_inputs(modalities: list[str], model_config: dict) -> list[str]:
    """The recommender's content inputs for the tagger ``modalities`` it reads: their
    embeddings (when ``model.embeddings``) and the genre scores the tagger gives from them
    (when ``model.genre_scores``); nothing for the id-only model (no modality). Both
    switches come from the config (configs/recommend/default.yaml sets them)."""
    if not modalities:
        return []
    raw = list(modalities) if model_config["embeddings"] else []
    return raw + ([GENRES] if model_config["genre_scores"] else [])


def add_genre_scores(tagger: TaggerBundle, content: dict, present: dict, modalities: list[str]) -> Content:
    """``content``/``present`` plus ``GENRES``: the tagger's sigmoid scores ``[N, L]`` from
    ``modalities`` only (the ablation's subsets stay honest), present where any of them is."""
    features = {m: ModalityFeatures(content[m], present[m], []) for m in modalities}
    scores = tagger.scores(features, modalities)
    known = np.zeros(len(scores), dtype=bool)
    for m in modalities:
        known |= np.asarray(present[m], dtype=bool)
    return {**content, GENRES: scores.astype(np.float32)}, {**present, GENRES: known}


def content_features(tagger: TaggerBundle | None, records: list[AlbumRecord], modalities: list[str],
                     cache_dir: Path, num_workers: int = 0, progress: bool = True,
                     genre_scores: bool = False) -> Content:
    """The content of ``records`` in order: the embeddings of ``modalities`` and, with
    ``genre_scores``, ``GENRES`` computed from them. No modality (id only): empty dicts."""
    if not modalities:
        return {}, {}
    features = tagger.embed(records, cache_dir, modalities, num_workers=num_workers, progress=progress)
    content = {m: f.embeddings for m, f in features.items()}
    present = {m: f.present for m, f in features.items()}
    if genre_scores:
        content, present = add_genre_scores(tagger, content, present, modalities)
    return content, present


def recommender_content(bundle: RecommenderBundle, records: list[AlbumRecord], manifest: str | Path,
                        num_workers: int = 0, progress: bool = True) -> Content:
    """The content a trained recommender reads, from the tagger checkpoint it names (loaded
    once, and only when the recommender reads some modality)."""
    tagger = load_checkpoint(bundle.tagger) if bundle.modalities else None
    return content_features(tagger, records, bundle.modalities,
                            default_cache_dir(bundle.config["data"].get("cache_dir"), manifest), num_workers,
                            progress, genre_scores=GENRES in bundle.input_dims)


def album_table(ids: list[str], content: dict[str, np.ndarray], present: dict[str, np.ndarray],
                id_vocabulary: list[str]) -> AlbumTable:
    """The model's view of a catalog: ids with a trained embedding get rows 1..n, others 0."""
    rows = {album: k + 1 for k, album in enumerate(id_vocabulary)}
    return AlbumTable(
        list(ids), {m: torch.from_numpy(np.asarray(v, dtype=np.float32)) for m, v in content.items()},
        {m: torch.from_numpy(np.asarray(v, dtype=bool)) for m, v in present.items()},
        torch.tensor([rows.get(album, 0) for album in ids], dtype=torch.long),
    )
