"""What `genre-tagger train` stores for search, and how the search commands read it back.

The joint space rides in ``model.ckpt`` under ``extra["joint_space"]``: plain tensors and
data, so the checkpoint still loads with ``weights_only=True``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.config import deep_merge, instantiate, read_yaml
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.search.features import DescriptionEmbeddings, bundle_features, embed_descriptions
from genre_tagger.search.combine import best_weight_score, combine, genre_vectors, select_genre_weight
from genre_tagger.search.fit import ALBUM_SIDE, JointData, JointSettings, fit_joint_space
from genre_tagger.search.joint import JointSpace
from genre_tagger.search import text_view

FORMAT = "genre_tagger.joint_space/1"
DEFAULTS = "search/joint.yaml"


def search_config(config: dict) -> dict:
    """The shipped ``configs/search/joint.yaml`` overlaid by the run config's ``search`` section."""
    return deep_merge(read_yaml(DEFAULTS)["search"], config.get("search") or {})


def joint_data(bundle: TaggerBundle, records: list[AlbumRecord], splits: dict[str, np.ndarray],
               cache_dir: Path | None, source, progress: bool = True, view=None) -> JointData:
    """Embeddings of every record (cached) and of the training albums' generated descriptions;
    with a fitted text ``view`` its vectors are appended to every text vector (``text_view.py``)."""
    features = bundle_features(bundle, records, cache_dir, progress=progress)
    album_side = [m for m in ALBUM_SIDE if m in features]
    text = features["text"]
    if view is not None:
        text = text_view.widen(text, text_view.view_features(view, bundle, records, cache_dir, progress))
    descriptions = (embed_descriptions(bundle, records, splits["train"], source, cache_dir, progress, view=view)
                    if source is not None else DescriptionEmbeddings.empty(text.embeddings.shape[1]))
    return JointData({m: features[m].embeddings for m in album_side}, {m: features[m].present for m in album_side},
                     text.embeddings, text.present, descriptions, [r.genres for r in records], splits,
                     view.out_dim if view is not None else 0)


def fit_view(bundle: TaggerBundle, records: list[AlbumRecord], splits: dict[str, np.ndarray], settings: dict,
             progress: bool = True):
    """The joint space's sparse text view fitted on the training albums, or None (``search.text_view``)."""
    if not text_view.wanted(bundle, settings.get("text_view")):
        return None
    return text_view.fit_text_view(bundle, [records[i] for i in splits["train"]], settings["text_view"], progress)


def train_joint_space(bundle: TaggerBundle, records: list[AlbumRecord], splits: dict[str, np.ndarray],
                      cache_dir: Path | None, progress: bool = True) -> tuple[dict, dict]:
    """The training hook: ``(checkpoint extra, report for metrics.json)``; empty extra when
    search is switched off or impossible (said on stderr)."""
    settings = search_config(bundle.config)
    if not settings.get("enabled", True):
        return {}, {"skipped": "search.enabled is false"}
    if "text" not in bundle.modalities or not set(ALBUM_SIDE) & set(bundle.modalities):
        reason = "the joint search space needs the text modality and audio or cover"
        print(f"note: no joint search space: {reason}", file=sys.stderr)
        return {}, {"skipped": reason}
    source = instantiate(settings["descriptions"]) if settings.get("descriptions") else None
    print("search: training the joint album/text space on cached embeddings", file=sys.stderr)
    view = fit_view(bundle, records, splits, settings, progress)
    data = joint_data(bundle, records, splits, cache_dir, source, progress, view)
    fit = JointSettings(**settings["fit"], seed=bundle.config.get("seed", 0))
    try:
        space, report = fit_joint_space(data, fit, progress, stems=tagger_stems(bundle),
                                        val_score=best_weight_score(bundle.model, data, splits["val"], fit))
    except ValueError as err:  # e.g. no training album with both an album side and a text
        print(f"note: no joint search space: {err}", file=sys.stderr)
        return {}, {"skipped": str(err)}
    weight, report["val"], report["genre_weights_tried"] = select_genre_weight(space, bundle.model, data,
                                                                               splits["val"], fit)
    report["genre_weight"] = weight
    report["descriptions"] = int(len(data.descriptions.owner))
    return {"joint_space": joint_payload(space, settings, weight, view)}, report


def tagger_stems(bundle: TaggerBundle) -> dict | None:
    """The tagger's modality projections when they have the stem shape (LayerNorm, Linear, GELU)."""
    projections = getattr(bundle.model, "projections", None)
    if projections is None:
        return None
    shaped = all(isinstance(p, torch.nn.Sequential) and len(p) == 3 and isinstance(p[0], torch.nn.LayerNorm)
                 and isinstance(p[1], torch.nn.Linear) for p in projections.values())
    return dict(projections.items()) if shaped else None


def joint_payload(space: JointSpace, settings: dict, genre_weight: float = 0.0, view=None) -> dict:
    """``genre_weight``: the val-selected weight of the genre-score part of the search vectors;
    ``view``: the fitted sparse text view (its vocabulary and idf), if any."""
    return {"format": FORMAT, "input_dims": dict(space.input_dims), "genre_weight": float(genre_weight),
            "init": {**JointSettings(**settings["fit"]).space_args(), "dim": space.dim, "stem_width": space.stem_width,
                     "text_view_dim": space.text_view_dim},
            "state_dict": {k: v.detach().cpu() for k, v in space.state_dict().items()},
            "text_view": text_view.view_payload(view) if view is not None else None,
            "index": dict(settings.get("index") or {})}


@dataclass
class SearchModel:
    """A tagger bundle (loaders, encoders) with its joint space and index settings. Search
    vectors (``album``, ``text``): ``[B, width]``, the joint-space vector and the tagger's
    genre scores weighted by ``genre_weight`` (``search.combine``)."""

    bundle: TaggerBundle
    space: JointSpace
    index_settings: dict
    path: Path
    genre_weight: float = 0.0
    view: torch.nn.Module | None = None  # the joint space's sparse text view (text_view.py)

    @property
    def width(self) -> int:
        return self.space.dim + len(self.bundle.labels)

    @torch.no_grad()
    def encode(self, modality: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """A loader batch of one modality -> ``[B, D]`` as the joint space reads it (text: the
        encoder's embedding with the view's vector appended)."""
        embedding = self.bundle.model.encoders[modality].encode(inputs).float()
        if modality == "text" and self.view is not None:
            embedding = torch.cat([embedding, self.view.to(embedding.device)(inputs).float()], dim=1)
        return embedding

    def features(self, records: list[AlbumRecord], cache_dir: Path | None, modalities: list[str] | None = None,
                 **options) -> dict:
        """``bundle_features`` of ``records``, text widened by the view's (cached) vectors."""
        features = bundle_features(self.bundle, records, cache_dir, modalities, **options)
        if "text" in features and self.view is not None:
            found = text_view.view_features(self.view, self.bundle, records, cache_dir, options.get("progress", True))
            features["text"] = text_view.widen(features["text"], found)
        return features

    @torch.no_grad()
    def album(self, embeddings: dict[str, torch.Tensor], present: dict[str, torch.Tensor]
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """``({m: [B, D_m]}, {m: [B]}) -> (vectors [B, width], known [B])``."""
        joint, known = self.space.album(embeddings, present)
        genre = genre_vectors(self.bundle.model, embeddings, present)
        return combine(joint, genre, self.genre_weight) * known.unsqueeze(-1), known

    @torch.no_grad()
    def text(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Text-encoder embeddings ``[B, D_text]`` -> query vectors ``[B, width]``."""
        present = {"text": torch.ones(embeddings.shape[0], dtype=torch.bool)}
        return combine(self.space.text(embeddings), genre_vectors(self.bundle.model, {"text": embeddings}, present),
                       self.genre_weight)


def load_search_model(path: str | Path, device: str | torch.device = "cpu") -> SearchModel:
    """The checkpoint's tagger bundle and joint space; a clear error when it holds none."""
    bundle = load_checkpoint(path, device=device)
    extra = torch.load(Path(path), map_location="cpu", weights_only=True).get("extra") or {}
    payload = extra.get("joint_space")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserInputError(f"{path} holds no joint search space (made with search off, without text, or before "
                             "search existed): train again with `genre-tagger train` to get one")
    space = JointSpace(payload["input_dims"], **payload["init"])
    space.load_state_dict(payload["state_dict"])
    return SearchModel(bundle, space.eval(), payload.get("index") or {}, Path(path).resolve(),
                       float(payload.get("genre_weight", 0.0)), text_view.load_view(payload.get("text_view")))
