"""The one prediction path: a trained ``GenreTagger`` and inputs -> sigmoid scores.

Every job that scores albums goes through ``predict_scores``: evaluate and end-to-end
training (``predict_all`` over decoded albums), tag (``predict_batch``, single-process and
under DDP), staged training and the ablation (``predict_embeddings`` over cached
embeddings), search and recommendation (through ``TaggerBundle.scores``).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre_tagger.data.dataset import AlbumCollator, AlbumDataset
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.runs import pick_device

EMBEDDING_CHUNK = 1024  # albums scored at once from cached embeddings


def predict_scores(model: GenreTagger, batch: dict[str, Any], device: torch.device | None = None) -> torch.Tensor:
    """Sigmoid scores ``[B, L]`` (float32, on the model's device) for one batch.

    ``batch`` is either a raw collated batch (``{m: loader.collate(...)}`` with
    ``"present": [B]`` per modality, see ``AlbumCollator``) or an embedding batch
    (``{"embeddings": {m: [B, D_m]}, "present": {m: [B]}}``); modalities missing from it
    count as absent. The model is put in eval mode (no modality dropout). With a taxonomy
    (``model.taxonomy``), every ancestor's score is raised to the max of its descendants'
    (``Taxonomy.constrain``): the scores every job sees are consistent with the tree.
    """
    if model.training:
        model.eval()
    with torch.inference_mode():
        if "embeddings" in batch:
            embeddings = {m: v.to(device) if device is not None else v for m, v in batch["embeddings"].items()}
            present = {m: v.to(device) if device is not None else v for m, v in batch["present"].items()}
            logits = model.logits_from_embeddings(embeddings, present)
        else:
            inputs = {m: {k: v.to(device) if device is not None else v for k, v in batch[m].items()}
                      for m in model.modalities}
            logits = model(inputs)
        scores = torch.sigmoid(logits).float()
        taxonomy = getattr(model, "taxonomy", None)
        return taxonomy.constrain(scores) if taxonomy else scores


@contextmanager
def unconstrained(model: GenreTagger) -> Iterator[GenreTagger]:
    """Within the block, ``model`` scores without its taxonomy's constraint (for the metrics
    that compare both)."""
    taxonomy = getattr(model, "taxonomy", None)
    model.taxonomy = None
    try:
        yield model
    finally:
        model.taxonomy = taxonomy


@dataclass
class PredictionBatch:
    """``scores [B, L]`` sigmoid probabilities, ``present {m: [B]}`` what was used.

    ``variants`` (only when asked for, see ``predict_batch``): the same albums scored with
    their presence masks edited, ``{"alone": {m: [B, L]}, "without": {m: [B, L]}}``.
    """

    indices: list[int]
    ids: list[str]
    scores: np.ndarray
    present: dict[str, np.ndarray]
    warnings: list[list[str]]
    variants: dict[str, dict[str, np.ndarray]] | None = None


def presence_variants(present: dict[str, torch.Tensor]) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """Edited presence masks ``{m: [B]}``: ``"alone"``: only m kept; ``"without"``: m removed."""
    return {"alone": {m: {n: mask & (n == m) for n, mask in present.items()} for m in present},
            "without": {m: {n: mask & (n != m) for n, mask in present.items()} for m in present}}


class BatchEmbedder:
    """A raw collated batch -> an embedding batch: ``"embeddings": {m: [B, D_m]}`` and
    ``"present": {m: [B] bool}`` in place of the modalities' inputs, other keys kept.

    It runs the frozen encoders where a batch is collated. On a CPU, ``tag`` hands one to its
    DataLoader workers as part of their collate_fn: each worker then decodes *and* embeds its
    own batches on one thread, so two cores run two batches' encoders side by side, where
    one process running them on two threads spent much of its CPU time waiting between small
    operations (benchmarks/RESULTS.md, "Tagging throughput").
    """

    def __init__(self, model: GenreTagger):
        self.model = model.eval()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        with torch.inference_mode():
            embeddings, present = self.model.embed({m: batch[m] for m in self.model.modalities})
        rest = {key: value for key, value in batch.items() if key not in self.model.modalities}
        return {**rest, "embeddings": {m: v.float() for m, v in embeddings.items()},
                "present": {m: mask.bool() for m, mask in present.items()}}


class EmbeddingCollator:
    """collate_fn: ``AlbumCollator`` then ``BatchEmbedder`` (the encoders run in the worker)."""

    def __init__(self, loaders: dict[str, ModalityLoader], model: GenreTagger):
        self.collate, self.embed = AlbumCollator(loaders), BatchEmbedder(model)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return self.embed(self.collate(items))


def batch_presence(model: GenreTagger, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``{m: [B] bool}`` of a raw or an embedding batch."""
    if "embeddings" in batch:
        return {m: batch["present"][m].bool() for m in model.modalities}
    return {m: batch[m]["present"].bool() for m in model.modalities}


def explained_scores(model: GenreTagger, batch: dict[str, Any],
                     device: torch.device | None = None) -> tuple[torch.Tensor, dict[str, dict[str, np.ndarray]]]:
    """A raw or embedding batch -> ``(scores [B, L], variants)``: the encoders run once (not
    at all for an embedding batch), then the fusion head scores the albums as they are and
    with each modality alone and removed (``presence_variants``). ``scores`` equals
    ``predict_scores(model, batch)``."""
    model.eval()
    if "embeddings" in batch:
        embeddings = {m: v.to(device) if device is not None else v for m, v in batch["embeddings"].items()}
        present = {m: v.to(device) if device is not None else v for m, v in batch_presence(model, batch).items()}
    else:
        with torch.inference_mode():
            inputs = {m: {k: v.to(device) if device is not None else v for k, v in batch[m].items()}
                      for m in model.modalities}
            embeddings, present = model.embed(inputs)
    present = {m: mask.bool() for m, mask in present.items()}
    scores = predict_scores(model, {"embeddings": embeddings, "present": present})
    variants = {kind: {m: predict_scores(model, {"embeddings": embeddings, "present": masks}).cpu().numpy()
                       for m, masks in by_modality.items()}
                for kind, by_modality in presence_variants(present).items()}
    return scores, variants


def predict_batch(model: GenreTagger, batch: dict, device: torch.device, explain: bool = False) -> PredictionBatch:
    """One collated raw or embedding batch (``BatchEmbedder``) -> scores. Albums with no usable
    modality still get a row. ``explain``: also the scores with each modality alone and
    removed (``explained_scores``)."""
    if explain:
        scores, variants = explained_scores(model, batch, device)
    else:
        scores, variants = predict_scores(model, batch, device), None
    return PredictionBatch(
        indices=batch["index"].tolist(), ids=batch["ids"], scores=scores.cpu().numpy(),
        present={m: mask.cpu().numpy() for m, mask in batch_presence(model, batch).items()}, warnings=batch["warnings"],
        variants=variants,
    )


def iter_predictions(
    model: GenreTagger,
    loaders: dict[str, ModalityLoader],
    records: list[AlbumRecord],
    batch_size: int = 32,
    num_workers: int = 2,
    device: str = "auto",
    progress: bool = True,
) -> Iterator[PredictionBatch]:
    """Predictions for ``records`` in order, batch by batch."""
    torch_device = pick_device(device)
    model.to(torch_device).eval()
    dataset = AlbumDataset(records, loaders)
    # on a CPU the workers run the encoders too (BatchEmbedder); a GPU runs them here
    collate = EmbeddingCollator(loaders, model) if torch_device.type == "cpu" else AlbumCollator(loaders)
    data = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
    with tqdm(total=len(records), desc="predicting", unit="album", disable=not progress) as bar:
        for batch in data:
            yield predict_batch(model, batch, torch_device)
            bar.update(len(batch["ids"]))


def predict_all(model: GenreTagger, loaders: dict[str, ModalityLoader], records: list[AlbumRecord],
                **options) -> tuple[np.ndarray, dict, list]:
    """All scores ``[N, L]``, presence ``{m: [N]}`` and warnings, in record order."""
    scores, present, warnings = [], {m: [] for m in model.modalities}, []
    for batch in iter_predictions(model, loaders, records, **options):
        scores.append(batch.scores)
        for m in model.modalities:
            present[m].append(batch.present[m])
        warnings.extend(batch.warnings)
    n_labels = model.n_labels
    stacked = np.concatenate(scores) if scores else np.zeros((0, n_labels), dtype=np.float32)
    return stacked, {m: np.concatenate(v) if v else np.zeros(0, bool) for m, v in present.items()}, warnings


def predict_embeddings(
    model: GenreTagger,
    embeddings: dict[str, np.ndarray],
    present: dict[str, np.ndarray],
    rows: np.ndarray,
    modalities: list[str] | None = None,
) -> np.ndarray:
    """Scores ``[len(rows), L]`` from cached embeddings (``{m: [N, D_m]}``, ``{m: [N]}``).

    Modalities left out of ``modalities`` count as absent (the ablation's "full model
    without X"). Runs on the CPU, ``EMBEDDING_CHUNK`` albums at a time.
    """
    use = [m for m in model.modalities if modalities is None or m in modalities]
    scores = []
    for start in range(0, len(rows), EMBEDDING_CHUNK):
        part = rows[start:start + EMBEDDING_CHUNK]
        batch = {"embeddings": {m: torch.from_numpy(embeddings[m][part]) for m in use},
                 "present": {m: torch.from_numpy(present[m][part]) for m in use}}
        if not use:  # nothing left: every album has no modality, the head sees only zeros
            first = model.modalities[0]
            batch = {"embeddings": {first: torch.zeros(len(part), model.encoders[first].out_dim)},
                     "present": {first: torch.zeros(len(part), dtype=torch.bool)}}
        scores.append(predict_scores(model, batch).cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros((0, model.n_labels), dtype=np.float32)
