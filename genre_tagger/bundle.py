"""The loaded tagger: the one interface every job uses to embed albums and score them.

A ``TaggerBundle`` is what a checkpoint rebuilds: the model, its loaders, labels and
calibrated thresholds, plus what other jobs stored beside the tagger (``extra``: the
joint search space). Jobs never read the run config or the model's layers: they ask
the bundle for its modalities and widths, embed records through the embedding cache
(``embed``: the one embedding loop) and turn embeddings into scores (``scores``: the one
prediction path, ``prediction.predict_embeddings``). With a taxonomy (``taxonomy``, kept
on the model), those scores are constrained to the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.features import ModalityFeatures, embed_records, encoder_fingerprint
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.prediction import predict_all, predict_embeddings
from genre_tagger.runs import pick_device
from genre_tagger.taxonomy import Taxonomy


@dataclass
class TaggerBundle:
    """Everything inference needs: the model, its loaders, labels and calibrated thresholds.

    ``config`` is the run's config as saved (it goes to ``config.yaml`` and new runs built
    on this one); ``extra`` holds what jobs stored beside the tagger, by name.
    """

    model: GenreTagger
    loaders: dict[str, ModalityLoader]
    labels: list[str]
    thresholds: np.ndarray
    config: dict
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return list(self.model.modalities)

    @property
    def taxonomy(self) -> Taxonomy | None:
        """The genre taxonomy the scores follow (``genre_tagger.taxonomy``), or None."""
        return getattr(self.model, "taxonomy", None)

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    @property
    def widths(self) -> dict[str, int]:
        """``{m: D_m}``: each modality's embedding width."""
        return self.model.input_widths

    def fingerprint(self, modality: str) -> str:
        """The embedding-cache fingerprint of one modality's encoder and loader."""
        return encoder_fingerprint(self.loaders[modality], self.model.encoders[modality])

    def embed(self, records: list[AlbumRecord], cache_dir: Path | None, modalities: list[str] | None = None,
              batch_size: int = 32, num_workers: int = 2, device: str = "auto",
              progress: bool = True) -> dict[str, ModalityFeatures]:
        """``{m: ModalityFeatures}`` (``embeddings [N, D_m]``, ``present [N]``) of ``records`` in
        order, from the cache where possible; frozen encoders only (they are after training)."""
        encoders = {m: self.model.encoders[m] for m in modalities or self.modalities}
        return embed_records(encoders, self.loaders, records, cache_dir, batch_size, num_workers, pick_device(device),
                             progress)

    def scores(self, features: dict[str, ModalityFeatures], modalities: list[str] | None = None,
               rows: np.ndarray | None = None) -> np.ndarray:
        """Sigmoid scores ``[N, L]`` (float32) from embedded ``features``; modalities left out of
        ``modalities`` count as absent. ``rows`` picks albums (default: all)."""
        if rows is None:
            rows = np.arange(len(next(iter(features.values())).present)) if features else np.zeros(0, np.int64)
        return predict_embeddings(self.model, {m: f.embeddings for m, f in features.items()},
                                  {m: f.present for m, f in features.items()}, rows, modalities)

    def predict(self, records: list[AlbumRecord], **options: Any) -> tuple[np.ndarray, dict, list]:
        """Decode and score ``records``: ``(scores [N, L], present {m: [N]}, warnings)``;
        ``options`` as ``prediction.iter_predictions``."""
        return predict_all(self.model, self.loaders, records, **options)
