"""Output records (docs/formats.md): scores of a batch -> one record per album."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genre_tagger.bundle import TaggerBundle
from genre_tagger.data.modalities import or_list, words
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.prediction import PredictionBatch


FIXED_COLUMNS = ("id", "status", "genres", "scores", "modalities", "warnings", "error")
EVIDENCE = "evidence"  # the field --explain adds (after the fixed ones)
PRIMARY = "primary"  # the field a model with a taxonomy adds: the most specific confident genre
EXPLAIN_TOP = 3  # genres explained for an album with none over its threshold


def status_kind(record: dict[str, Any]) -> str:
    """Summary bucket: "error", "warning" (ok with warnings) or "ok"."""
    if record.get("status") != "ok":
        return "error"
    return "warning" if record.get("warnings") else "ok"


@dataclass
class RecordBuilder:
    """Scores of a batch -> output records (docs/formats.md).

    ``thresholds [L]``: a label is in ``genres`` when its score >= its threshold (as in the
    metrics). ``scores`` holds the ``top_k`` best labels (every label with ``all_scores``),
    best first, rounded to 4 decimals. Extra manifest fields follow the fixed ones; one that
    would overwrite a fixed field is written as ``manifest_<name>``.

    ``explain``: each ``ok`` record also gets ``evidence``, one entry per genre in ``genres``
    (the ``EXPLAIN_TOP`` best when none is over its threshold): ``{"label", "score",
    "alone": {m: score}, "without": {m: score}}`` over the modalities the album used, from
    the batch's ``variants`` (``prediction.predict_batch(..., explain=True)``).

    ``taxonomy`` (``genre_tagger.taxonomy.Taxonomy``, the model's): ``genres`` also holds
    every ancestor of a genre over its threshold, parents before children (then by score),
    and every record has ``primary``: the deepest genre over its threshold (ties by score),
    or null.
    """

    labels: list[str]
    thresholds: np.ndarray
    modalities: list[str]
    top_k: int = 10
    all_scores: bool = False
    explain: bool = False
    taxonomy: Any = None

    @classmethod
    def from_bundle(cls, bundle: TaggerBundle, top_k: int, all_scores: bool, threshold: float | None,
                    explain: bool = False) -> "RecordBuilder":
        """The model's labels and calibrated thresholds, or ``threshold`` for every label."""
        thresholds = (np.full(len(bundle.labels), threshold, dtype=np.float64) if threshold is not None
                      else np.asarray(bundle.thresholds, dtype=np.float64))
        return cls(list(bundle.labels), thresholds, bundle.modalities, top_k, all_scores, explain,
                   getattr(bundle, "taxonomy", None))

    def records(self, meta: list[dict[str, Any]], prediction: PredictionBatch) -> list[dict[str, Any]]:
        out = []
        for row, album in enumerate(meta):
            used = [m for m in self.modalities if bool(prediction.present[m][row])]
            variants = None
            if self.explain and prediction.variants is not None:
                variants = {kind: {m: scores[row] for m, scores in by_modality.items()}
                            for kind, by_modality in prediction.variants.items()}
            out.append(self.album(album, prediction.scores[row], used, prediction.warnings[row], variants))
        return out

    def album(self, meta: dict[str, Any], scores: np.ndarray, used: list[str], warnings: list[str],
              variants: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, Any]:
        """``variants``: this album's ``{"alone" | "without": {m: scores [L]}}`` (with ``explain``)."""
        record: dict[str, Any] = {"id": meta["id"]}
        if not used:
            record.update(status="error", error=self.nothing_usable(meta["declared"], warnings),
                          modalities=[], warnings=list(warnings))
        else:
            order = np.argsort(-scores, kind="stable")
            keep = order if self.all_scores else order[: max(self.top_k, 0)]
            confident = [j for j in order if scores[j] >= self.thresholds[j]]
            primary = None
            if self.taxonomy:
                primary = self.taxonomy.primary(confident, scores)
                closed = set(confident).union(*(self.taxonomy.ancestor_indices(j) for j in confident))
                confident = self.taxonomy.order(closed, scores)
            record.update(
                status="ok",
                genres=[self.labels[j] for j in confident],
                scores={self.labels[j]: round(float(scores[j]), 4) for j in keep},
                modalities=used,
                warnings=list(warnings),
            )
            if self.taxonomy:
                record[PRIMARY] = self.labels[primary] if primary is not None else None
            if variants is not None:
                record[EVIDENCE] = self.evidence(confident or list(order[:EXPLAIN_TOP]), scores, used, variants)
        if self.taxonomy:
            record.setdefault(PRIMARY, None)
        reserved = (*FIXED_COLUMNS, *((EVIDENCE,) if self.explain else ()), *((PRIMARY,) if self.taxonomy else ()))
        for key, value in meta["extra"].items():
            record[f"manifest_{key}" if key in reserved else key] = value
        return record

    def evidence(self, genres: list[int], scores: np.ndarray, used: list[str],
                 variants: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
        """Per genre (label indices): its score, its score from each used modality alone and without each."""
        out = []
        for j in genres:
            out.append({"label": self.labels[j], "score": round(float(scores[j]), 4),
                        **{kind: {m: round(float(variants[kind][m][j]), 4) for m in used}
                           for kind in ("alone", "without")}})
        return out

    def nothing_usable(self, declared: list[str], warnings: list[str]) -> str:
        """E.g. "no usable modality: audio: cannot decode 'a.mp3': ...; album has no cover or text"."""
        causes = list(warnings)
        missing = words(m for m in self.modalities if m not in declared)
        if missing:
            causes.append("album has no " + or_list(missing))
        ignored = words(m for m in declared if m not in self.modalities)
        if ignored:
            causes.append(f"this model does not use {or_list(ignored)}")
        return "no usable modality: " + ("; ".join(causes) or "nothing to tag from")


def crash_record(album_id: str, record: AlbumRecord | None, reason: str) -> dict[str, Any]:
    """The error record of an album whose decoding killed a worker process twice."""
    where = f"manifest line {record.line}: " if record is not None else ""
    out = {"id": album_id, "status": "error",
           "error": f"{where}decoding this album crashed a DataLoader worker process ({reason}); album skipped",
           "modalities": [], "warnings": []}
    for key, value in (record.extra if record is not None else {}).items():
        out[f"manifest_{key}" if key in FIXED_COLUMNS else key] = value
    return out


@dataclass(frozen=True)
class TagOptions:
    """What a ``tag`` run is asked for besides its files (the CLI's flags); checked when made.

    ``output_format``: jsonl / csv / parquet (None: from the extension, else jsonl).
    ``threshold``: one threshold for every label instead of the calibrated ones.
    """

    output_format: str | None = None
    top_k: int = 10
    all_scores: bool = False
    threshold: float | None = None
    batch_size: int = 32
    num_workers: int = 2
    device: str = "auto"
    progress: bool = True
    explain: bool = False

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise UserInputError(f"--top-k must be >= 0, got {self.top_k}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise UserInputError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if self.batch_size < 1:
            raise UserInputError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise UserInputError(f"--num-workers must be >= 0, got {self.num_workers}")

    def builder(self, bundle: TaggerBundle) -> RecordBuilder:
        return RecordBuilder.from_bundle(bundle, self.top_k, self.all_scores, self.threshold, self.explain)
