"""The label vocabulary: names <-> indices, multi-hot targets, unknown-label reporting."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError


class LabelVocabulary:
    """An ordered list of genre names. Nothing is hard-coded to MuMu's 250."""

    def __init__(self, names: list[str]):
        if len(set(names)) != len(names):
            raise UserInputError("the label list holds duplicate names")
        if not names:
            raise UserInputError("the label list is empty: no album has any genre")
        self.names = list(names)
        self.index = {name: position for position, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_records(cls, records: list[AlbumRecord]) -> "LabelVocabulary":
        """Every genre named by the records, most frequent first (ties by name)."""
        counts: dict[str, int] = {}
        for record in records:
            for genre in record.genres or []:
                counts[genre] = counts.get(genre, 0) + 1
        return cls(sorted(counts, key=lambda name: (-counts[name], name)))

    @classmethod
    def from_file(cls, path: str | Path) -> "LabelVocabulary":
        """One label per line; blank lines and '#' comments are skipped."""
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise UserInputError(f"cannot read label file {path}: {err}") from err
        names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return cls(names)

    def encode(self, records: list[AlbumRecord]) -> tuple[np.ndarray, dict[str, int]]:
        """Multi-hot targets ``[N, L]`` float32 and the counts of labels not in the vocabulary."""
        targets = np.zeros((len(records), len(self.names)), dtype=np.float32)
        unknown: dict[str, int] = {}
        for row, record in enumerate(records):
            for genre in record.genres or []:
                column = self.index.get(genre)
                if column is None:
                    unknown[genre] = unknown.get(genre, 0) + 1
                else:
                    targets[row, column] = 1.0
        return targets, unknown


def describe_unknown(unknown: dict[str, int], limit: int = 10) -> str:
    """One line naming the labels the model does not know (reported once, then ignored)."""
    names = sorted(unknown, key=lambda name: -unknown[name])
    shown = ", ".join(f"{name!r} ({unknown[name]})" for name in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{len(names)} label(s) unknown to the model are left out of the metrics: {shown}{more}"
