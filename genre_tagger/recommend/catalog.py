"""The catalog's album content: frozen modality embeddings from a tagger checkpoint's
encoders, through the shared embedding cache (``genre_tagger.features``), so that they
are computed once per album and encoder (and reused from `train` when it cached them),
and the tagger's genre scores computed from them (``GENRES``, when the config asks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.features import encoder_fingerprint, extract_features
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.prediction import predict_embeddings
from genre_tagger.recommend.model import GENRES, AlbumTable

MODALITY_ORDER = ("audio", "image", "text")


def parse_modalities(text: str | list[str] | None, available: list[str]) -> list[str]:
    """``"audio,text"`` -> canonical order; ``none`` -> [] (id only); must be the tagger's."""
    if text is None:
        return [m for m in MODALITY_ORDER if m in available]
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    if names in (["none"], ["id"], []):
        return []
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UserInputError(f"--modalities: {', '.join(unknown)} not in the tagger checkpoint "
                             f"(it has {', '.join(available) or 'none'}); use a subset, or 'none' for id only")
    return [m for m in MODALITY_ORDER if m in names]


def tagger_modalities(tagger_checkpoint: str | Path) -> list[str]:
    return load_checkpoint(tagger_checkpoint).modalities


def model_inputs(modalities: list[str], model_config: dict) -> list[str]:
    """The recommender's content inputs for the tagger ``modalities`` it reads: their
    embeddings (``model.embeddings``, default on) and the genre scores the tagger gives from
    them (``model.genre_scores``, default off: checkpoints from before it); nothing for the
    id-only model (no modality)."""
    if not modalities:
        return []
    raw = list(modalities) if model_config.get("embeddings", True) else []
    return raw + ([GENRES] if model_config.get("genre_scores", False) else [])


def add_genre_scores(tagger: GenreTagger, content: dict, present: dict, modalities: list[str]) -> tuple[dict, dict]:
    """``content``/``present`` plus ``GENRES``: the tagger's sigmoid scores ``[N, L]`` from
    ``modalities`` only (the ablation's subsets stay honest), present where any of them is."""
    n = len(next(iter(present.values())))
    scores = predict_embeddings(tagger, content, present, np.arange(n), modalities)
    known = np.zeros(n, dtype=bool)
    for m in modalities:
        known |= np.asarray(present[m], dtype=bool)
    return {**content, GENRES: scores.astype(np.float32)}, {**present, GENRES: known}


def content_features(tagger_checkpoint: str | Path, records: list[AlbumRecord], modalities: list[str],
                     cache_dir: Path, num_workers: int = 0, progress: bool = True,
                     genre_scores: bool = False) -> tuple[dict, dict]:
    """``({m: [N, D_m] float32}, {m: [N] bool})`` for ``records`` in order: the embeddings of
    ``modalities`` and, with ``genre_scores``, ``GENRES`` computed from them."""
    if not modalities:
        return {}, {}
    bundle = load_checkpoint(tagger_checkpoint)
    features = bundle.embed(records, cache_dir, modalities, num_workers=num_workers, progress=progress)
    content = {m: f.embeddings for m, f in features.items()}
    present = {m: f.present for m, f in features.items()}
    if genre_scores:
        content, present = add_genre_scores(bundle.model, content, present, modalities)
    return content, present


def album_table(ids: list[str], content: dict[str, np.ndarray], present: dict[str, np.ndarray],
                id_vocabulary: list[str]) -> AlbumTable:
    """The model's view of a catalog: ids with a trained embedding get rows 1..n, others 0."""
    rows = {album: k + 1 for k, album in enumerate(id_vocabulary)}
    return AlbumTable(
        list(ids), {m: torch.from_numpy(np.asarray(v, dtype=np.float32)) for m, v in content.items()},
        {m: torch.from_numpy(np.asarray(v, dtype=bool)) for m, v in present.items()},
        torch.tensor([rows.get(album, 0) for album in ids], dtype=torch.long),
    )
