"""Scores for albums from a checkpoint: decode in workers, encode and fuse under inference_mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre_tagger.checkpoint import TaggerBundle
from genre_tagger.data.dataset import AlbumCollator, AlbumDataset
from genre_tagger.data.records import AlbumRecord


@dataclass
class PredictionBatch:
    """``scores [B, L]`` sigmoid probabilities, ``present {m: [B]}`` what was used."""

    indices: list[int]
    ids: list[str]
    scores: np.ndarray
    present: dict[str, np.ndarray]
    warnings: list[list[str]]


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def predict_batch(bundle: TaggerBundle, batch: dict, device: torch.device) -> PredictionBatch:
    """One collated raw batch -> scores. Albums with no usable modality still get a row."""
    inputs = {m: {k: v.to(device) for k, v in batch[m].items()} for m in bundle.modalities}
    with torch.inference_mode():
        logits = bundle.model(inputs)
    return PredictionBatch(
        indices=batch["index"].tolist(), ids=batch["ids"], scores=torch.sigmoid(logits).float().cpu().numpy(),
        present={m: batch[m]["present"].numpy() for m in bundle.modalities}, warnings=batch["warnings"],
    )


def iter_predictions(
    bundle: TaggerBundle,
    records: list[AlbumRecord],
    batch_size: int = 32,
    num_workers: int = 2,
    device: str = "auto",
    progress: bool = True,
) -> Iterator[PredictionBatch]:
    """Predictions for ``records`` in order, batch by batch."""
    torch_device = pick_device(device)
    bundle.model.to(torch_device).eval()
    dataset = AlbumDataset(records, bundle.loaders)
    data = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=AlbumCollator(bundle.loaders))
    with tqdm(total=len(records), desc="predicting", unit="album", disable=not progress) as bar:
        for batch in data:
            yield predict_batch(bundle, batch, torch_device)
            bar.update(len(batch["ids"]))


def predict_all(bundle: TaggerBundle, records: list[AlbumRecord], **options) -> tuple[np.ndarray, dict, list]:
    """All scores ``[N, L]``, presence ``{m: [N]}`` and warnings, in record order."""
    scores, present, warnings = [], {m: [] for m in bundle.modalities}, []
    for batch in iter_predictions(bundle, records, **options):
        scores.append(batch.scores)
        for m in bundle.modalities:
            present[m].append(batch.present[m])
        warnings.extend(batch.warnings)
    n_labels = len(bundle.labels)
    stacked = np.concatenate(scores) if scores else np.zeros((0, n_labels), dtype=np.float32)
    return stacked, {m: np.concatenate(v) if v else np.zeros(0, bool) for m, v in present.items()}, warnings
