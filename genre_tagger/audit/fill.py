"""Fill priorities: which missing or broken modality, added to which album, helps most.

For a modality ``m`` and the set ``P`` of modalities an album has, the *effect* of adding
``m`` is measured on the labelled albums that have ``m`` and all of ``P``: the tagger scores
them from ``P`` alone and from ``P`` plus ``m`` (``TaggerBundle.scores`` with the others
counted as absent), and the drop in binary cross-entropy against their labels is averaged per
label, separately over the albums that carry the label and those that do not. An album that
lacks ``m`` (absent from the manifest, or named but undecodable) gains, in expectation over
its likely genres (its current scores ``q``):

    gain = sum over labels of  q * drop_on_carriers + (1 - q) * drop_on_others

(nats of log-loss summed over the labels): high when ``m`` carries the genres the album
probably has, and when what it has now (``P``) says little on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genre_tagger.audit.catalog import AuditInputs

COLUMNS = ("id", "modality", "gain", "state", "has", "likely_genres", "reference_albums", "reason")
ABSENT, UNDECODABLE = "absent", "undecodable"


@dataclass
class Effect:
    """Adding ``modality`` to albums that have ``others``: mean log-loss drop per label on the
    reference albums that carry it (``carriers [L]``) and that do not (``others_drop [L]``)."""

    modality: str
    others: tuple[str, ...]
    n_albums: int
    carriers: np.ndarray
    others_drop: np.ndarray


def log_loss(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Element-wise binary cross-entropy ``[n, L]`` (scores clipped away from 0 and 1)."""
    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    return -(targets * np.log(s) + (1 - targets) * np.log(1 - s))


def measure_effect(inputs: AuditInputs, modality: str, others: tuple[str, ...]) -> Effect:
    """The effect of adding ``modality`` to ``others`` (module docstring)."""
    present = inputs.present
    has = present[modality][inputs.labelled].copy()
    for other in others:
        has &= present[other][inputs.labelled]
    rows, targets = inputs.labelled[has], inputs.targets[has]
    n_labels = inputs.bundle.n_labels
    if len(rows) == 0:
        return Effect(modality, others, 0, np.zeros(n_labels), np.zeros(n_labels))
    without = inputs.bundle.scores(inputs.features, modalities=list(others), rows=rows)
    with_it = inputs.bundle.scores(inputs.features, modalities=[*others, modality], rows=rows)
    drop = log_loss(targets, without) - log_loss(targets, with_it)
    carriers = targets > 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        on_carriers = (drop * carriers).sum(axis=0) / carriers.sum(axis=0)
        on_others = (drop * ~carriers).sum(axis=0) / (~carriers).sum(axis=0)
    return Effect(modality, others, len(rows), np.nan_to_num(on_carriers), np.nan_to_num(on_others))


def album_gain(effect: Effect, likely: np.ndarray) -> float:
    """Expected log-loss drop for an album whose genre probabilities are ``likely [L]``."""
    q = np.asarray(likely, dtype=np.float64)
    return float((q * effect.carriers + (1 - q) * effect.others_drop).sum())


def fill_priorities(inputs: AuditInputs, top_genres: int = 3) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """Rows of ``fill_priorities.csv`` (highest gain first) and per-modality counts
    ``{m: {"present", "absent", "undecodable"}}`` over every album of the manifest."""
    present = inputs.present
    declared = {m: inputs.declared(m) for m in inputs.modalities}
    effects: dict[tuple[str, tuple[str, ...]], Effect] = {}
    rows = []
    for i, record in enumerate(inputs.records):
        has = tuple(m for m in inputs.modalities if present[m][i])
        likely = inputs.scores[i]
        genres = ", ".join(inputs.labels[j] for j in np.argsort(-likely, kind="stable")[:top_genres])
        for modality in inputs.modalities:
            if present[modality][i]:
                continue
            key = (modality, has)
            if key not in effects:
                effects[key] = measure_effect(inputs, modality, has)
            effect = effects[key]
            broken = bool(declared[modality][i])
            rows.append({"id": record.id, "modality": modality, "gain": round(album_gain(effect, likely), 6),
                         "state": UNDECODABLE if broken else ABSENT, "has": "+".join(has),
                         "likely_genres": genres, "reference_albums": effect.n_albums,
                         "reason": "; ".join(inputs.features[modality].warnings[i]) if broken else ""})
    rows.sort(key=lambda r: (-r["gain"], r["id"], r["modality"]))
    counts = {m: {"present": int(present[m].sum()), "absent": int((~declared[m] & ~present[m]).sum()),
                  "undecodable": int((declared[m] & ~present[m]).sum())} for m in inputs.modalities}
    return rows, counts
