"""What the audit reads: a checkpoint's tagger, a manifest's albums, their cached embeddings,
the tagger's scores and the labelled albums' targets in the tagger's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.data.manifest import read_manifest_reporting
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.features import ModalityFeatures
from genre_tagger.labels import LabelVocabulary, describe_unknown
from genre_tagger.runs import default_cache_dir, say


@dataclass
class AuditInputs:
    """One manifest seen through one tagger.

    ``records`` are every usable album of the manifest (``N``), ``features`` their cached
    embeddings (``{m: ModalityFeatures}``), ``scores [N, L]`` the tagger's sigmoid scores
    from what each album has. ``labelled`` holds the rows the label review covers (albums
    with at least one genre the tagger knows and at least one usable modality), ``targets
    [len(labelled), L]`` their genres. ``notes``: what the report should say about them.
    """

    bundle: TaggerBundle
    records: list[AlbumRecord]
    features: dict[str, ModalityFeatures]
    scores: np.ndarray
    labelled: np.ndarray
    targets: np.ndarray
    notes: list[str] = field(default_factory=list)
    checkpoint: str = ""
    manifest: str = ""

    @property
    def modalities(self) -> list[str]:
        return self.bundle.modalities

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels

    @property
    def present(self) -> dict[str, np.ndarray]:
        """``{m: [N]}``: the modality was decoded and used."""
        return {m: np.asarray(f.present, dtype=bool) for m, f in self.features.items()}

    def declared(self, modality: str) -> np.ndarray:
        """``[N]``: the manifest names an input for ``modality`` (it may not decode)."""
        return np.array([r.has_modality(modality) for r in self.records], dtype=bool)

    def usable(self) -> np.ndarray:
        """``[N]``: albums with at least one usable modality."""
        return np.any(np.stack([p for p in self.present.values()]), axis=0)

    def splits(self) -> np.ndarray:
        """``[N]`` each album's split (``""`` when none)."""
        return np.array([r.split or "" for r in self.records], dtype=object)


def load_inputs(checkpoint: str | Path, manifest: str | Path, cache_dir: str | Path | None = None,
                batch_size: int = 32, num_workers: int = 2, device: str = "auto",
                progress: bool = True) -> AuditInputs:
    """Load the tagger and the manifest, embed every album (through the embedding cache: the
    one ``train`` filled when it is the same catalog) and score it. Bad manifest lines are
    reported (``warning: ...``) and skipped."""
    bundle = load_checkpoint(checkpoint)
    records = read_manifest_reporting(manifest)
    if not records:
        raise UserInputError(f"{manifest}: no usable album to audit")
    cache = default_cache_dir(cache_dir or bundle.config.get("data", {}).get("cache_dir"), manifest)
    say(f"embedding {len(records)} album(s) (cache: {cache})")
    features = bundle.embed(records, cache, batch_size=batch_size, num_workers=num_workers, device=device,
                            progress=progress)
    scores = bundle.scores(features)
    inputs = AuditInputs(bundle, records, features, scores, np.zeros(0, np.int64),
                         np.zeros((0, bundle.n_labels), np.float32), checkpoint=str(checkpoint),
                         manifest=str(manifest))
    _select_labelled(inputs)
    inputs.notes.extend(trained_encoder_notes(bundle))
    return inputs


def _select_labelled(inputs: AuditInputs) -> None:
    """The albums the label review covers, their targets, and notes on those left out."""
    named = np.array([i for i, r in enumerate(inputs.records) if r.genres], dtype=np.int64)
    targets, unknown = LabelVocabulary(inputs.labels).encode([inputs.records[i] for i in named])
    if unknown:
        message = describe_unknown(unknown).replace("the metrics", "the label review")
        say(f"warning: {message}")
        inputs.notes.append(message)
    usable = inputs.usable()[named] if len(named) else np.zeros(0, bool)
    known = targets.sum(axis=1) > 0
    keep = usable & known
    if (~known).any():
        inputs.notes.append(f"{int((~known).sum())} labelled album(s) have no genre the model knows: "
                            "left out of the label review")
    if (known & ~usable).any():
        inputs.notes.append(f"{int((known & ~usable).sum())} labelled album(s) have no usable modality "
                            "(nothing to judge their labels by): left out of the label review")
    inputs.labelled, inputs.targets = named[keep], targets[keep]


def trained_encoder_notes(bundle: TaggerBundle) -> list[str]:
    """A note per modality whose encoder was trained on the training labels (``frozen: false``
    in its config): its embeddings of the training albums carry those labels, which can hide
    their errors from the out-of-fold heads."""
    encoders = bundle.config.get("model", {}).get("encoders", {})
    notes = []
    for modality in bundle.modalities:
        if _trains(encoders.get(modality)):
            notes.append(f"the {modality} encoder was trained on the training split's labels: its embeddings "
                         "of training albums carry those labels, so errors in them are harder to see")
    return notes


def _trains(spec: Any) -> bool:
    if isinstance(spec, dict):
        if spec.get("frozen") is False:
            return True
        return any(_trains(value) for value in spec.values())
    if isinstance(spec, list):
        return any(_trains(value) for value in spec)
    return False
