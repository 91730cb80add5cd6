"""``recommender.ckpt``: a plain dict of tensors and strings (loaded with ``weights_only=True``).

It holds its format (``genre_tagger.recommender/<version>``), the config, the modalities
and the model's content inputs with their widths, the ids of the albums that have a
trained id embedding, the weights, and the name of the tagger checkpoint (copied into the
run directory) whose encoders give the albums' content. Files of earlier versions are
brought to today's shape by ``genre_tagger.upgrade`` as they load.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from genre_tagger.config import instantiate
from genre_tagger.errors import UserInputError
from genre_tagger.recommend.model import GENRES, NextAlbumModel
from genre_tagger.upgrade import RECOMMENDER_FORMAT, format_tag, upgrade_payload


@dataclass
class RecommenderBundle:
    model: NextAlbumModel
    config: dict
    modalities: list[str]        # the tagger modalities read (their embeddings and/or genre scores)
    input_dims: dict[str, int]   # the model's content inputs and widths: modalities and/or GENRES
    id_vocabulary: list[str]
    tagger: Path | None          # the tagger checkpoint giving album content (None: id only)


def build_model(config: dict, input_dims: dict[str, int], n_ids: int) -> NextAlbumModel:
    """Built once here from ``config['model']`` (class_path + init_args); the genre taste
    only when the content has the tagger's genre scores and the config names one."""
    albums = instantiate(config["model"]["albums"], input_dims=input_dims, n_ids=n_ids)
    history = instantiate(config["model"]["history"])
    taste_spec = config["model"].get("taste")
    taste = instantiate(taste_spec, n_labels=input_dims[GENRES]) if taste_spec and GENRES in input_dims else None
    return NextAlbumModel(albums, history, taste)


def save_recommender(path: Path, bundle: RecommenderBundle) -> None:
    payload = {
        "format": format_tag(RECOMMENDER_FORMAT), "config": bundle.config, "modalities": list(bundle.modalities),
        "input_dims": dict(bundle.input_dims), "id_vocabulary": list(bundle.id_vocabulary),
        "tagger": bundle.tagger.name if bundle.tagger else None,
        "state_dict": {k: v.detach().cpu() for k, v in bundle.model.state_dict().items()},
    }
    partial = Path(path).with_suffix(".partial")
    torch.save(payload, partial)
    partial.replace(path)


def load_recommender(path: str | Path) -> RecommenderBundle:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"recommender checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise UserInputError(f"cannot load recommender checkpoint {path}: {type(err).__name__}: {first}") from err
    payload = upgrade_payload(payload, RECOMMENDER_FORMAT, path,
                              "a recommender checkpoint (train one with `train-recommender`)")
    model = build_model(payload["config"], payload["input_dims"], len(payload["id_vocabulary"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise UserInputError(f"{path}: weights do not fit this version's model: {str(err).splitlines()[0]}") from err
    model.eval()
    tagger = path.parent / payload["tagger"] if payload["tagger"] else None
    if tagger is not None and not tagger.is_file():
        raise UserInputError(f"{path}: the tagger checkpoint it needs is missing: {tagger}")
    return RecommenderBundle(model, payload["config"], payload["modalities"], payload["input_dims"],
                             payload["id_vocabulary"], tagger)
