"""Labelled albums: records, label vocabulary, targets and splits (what training, evaluation
and the benchmark references read)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_tagger.data.manifest import read_manifest_reporting
from genre_tagger.data.records import AlbumRecord
from genre_tagger.data.splits import assign_splits
from genre_tagger.errors import UserInputError
from genre_tagger.labels import LabelVocabulary, describe_unknown
from genre_tagger.runs import say

@dataclass
class TrainingData:
    """The labelled albums of a manifest: ``targets [N, L]`` and row indices per split."""

    records: list[AlbumRecord]
    vocabulary: LabelVocabulary
    targets: np.ndarray
    splits: dict[str, np.ndarray]

    def rows(self, split: str) -> list[AlbumRecord]:
        return [self.records[i] for i in self.splits[split]]


def load_training_data(manifest: str | Path, labels_file: str | Path | None, seed: int) -> TrainingData:
    """Labelled albums with splits (artist-disjoint ones made where the manifest has none)."""
    records = [r for r in read_manifest_reporting(manifest) if r.genres]
    if not records:
        raise UserInputError(f"{manifest}: no album has genres to train on")
    if any(r.split is None for r in records):
        say(f"assigned artist-disjoint splits to {assign_splits(records, seed=seed)} album(s) without one")
    train_records = [r for r in records if r.split == "train"]
    vocabulary = LabelVocabulary.from_file(labels_file) if labels_file else LabelVocabulary.from_records(train_records)
    targets, unknown = vocabulary.encode(records)
    if unknown:
        say(f"warning: {describe_unknown(unknown)}")
    splits = {name: np.array([i for i, r in enumerate(records) if r.split == name], dtype=np.int64)
              for name in ("train", "val", "test")}
    for name in ("train", "val"):
        if len(splits[name]) == 0:
            raise UserInputError(f"{manifest}: no labelled album has split={name}")
    return TrainingData(records, vocabulary, targets, splits)


def check_modalities(data: TrainingData, modalities: list[str]) -> list[str]:
    """Modalities some training album has; an absent one is an error when asked for alone."""
    train = data.rows("train")
    usable = [m for m in modalities if any(r.has_modality(m) for r in train)]
    for missing in sorted(set(modalities) - set(usable)):
        say(f"warning: no training album has {missing}: training without it")
    if not usable:
        raise UserInputError(f"no training album has any of: {', '.join(modalities)}")
    return usable
