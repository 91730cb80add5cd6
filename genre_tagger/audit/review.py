"""The label review queue: (album, label) pairs whose recorded state the evidence contradicts.

Confident learning, one label at a time (each label a binary class): with out-of-fold
probabilities ``p`` (``audit/folds.py``), the label's *positive threshold* is the mean ``p``
over the albums that carry it and its *negative threshold* the mean ``1 - p`` over those that
do not. An album without the label whose ``p`` reaches the positive threshold (and is the
more confident side) is ``missing`` the label; an album with it whose ``1 - p`` reaches the
negative threshold is an ``unexpected`` label. Labels with fewer than ``MIN_POSITIVES``
carriers among the reviewed albums give no ``missing`` rows (their threshold would rest on one
or two albums).

``score``: how far, in log-odds, the album's ``p`` lies from the label's positive threshold
(the typical carrier): ``logit(p) - logit(t)`` for a missing label, ``logit(t) - logit(p)`` for
an unexpected one, so one queue sorts both kinds and every label on one scale. On the audit
benchmark (benchmarks/RESULTS.md) it ranked planted errors better than the raw probability of
the other state (``p`` or ``1 - p``), which floods the queue with the lone carriers of rare
labels no head can learn, and than ranks within each label.

The genre tree's rule (``audit/tree.py``), when given: a genre absent while one of its
sub-genres is present is a ``missing`` row whatever ``p`` says, and its score gains the
rule's log-odds (``tree.BONUS``); ``implied_by`` names the sub-genres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_POSITIVES = 3
MISSING, UNEXPECTED = "missing", "unexpected"
COLUMNS = ("id", "label", "issue", "score", "probability", "threshold", "model_score", "split", "implied_by")
CLIP = 1e-6  # probabilities are clipped to [CLIP, 1 - CLIP] before log-odds


@dataclass
class Thresholds:
    """Per label: ``positive [L]`` (mean p over carriers), ``negative [L]`` (mean 1 - p over
    the others); NaN where a label has no carrier (or no other album)."""

    positive: np.ndarray
    negative: np.ndarray


def confident_thresholds(probabilities: np.ndarray, targets: np.ndarray) -> Thresholds:
    positives = targets > 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = (probabilities * positives).sum(axis=0) / positives.sum(axis=0)
        negative = ((1 - probabilities) * ~positives).sum(axis=0) / (~positives).sum(axis=0)
    return Thresholds(positive, negative)


def flag_issues(probabilities: np.ndarray, targets: np.ndarray,
                thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """``(missing [n, L], unexpected [n, L])`` boolean masks (module docstring)."""
    p, positives = probabilities, targets > 0.5
    says_yes = p >= thresholds.positive[None, :]
    says_no = (1 - p) >= thresholds.negative[None, :]
    # both sides above their thresholds: the more probable one wins, as in confident learning
    yes = says_yes & (~says_no | (p > 0.5))
    no = says_no & (~says_yes | (p <= 0.5))
    enough = positives.sum(axis=0) >= MIN_POSITIVES
    return ~positives & yes & enough[None, :], positives & no


def log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1 - CLIP)
    return np.log(p / (1 - p))


def review_rows(ids: list[str], labels: list[str], splits: list[str], probabilities: np.ndarray,
                targets: np.ndarray, model_scores: np.ndarray,
                tree: tuple[np.ndarray, list[list[str]]] | None = None, bonus: float = 0.0) -> list[dict]:
    """The queue's rows, most likely errors first (ties: album id, then label).

    ``ids``/``splits`` ``[n]``, ``probabilities``/``targets``/``model_scores`` ``[n, L]`` (the
    reviewed albums, out-of-fold probabilities, the tagger's own scores). ``tree``: the genre
    tree's ``(gap [n, L], implied_by)`` (``tree.parent_gaps``) and ``bonus`` its log-odds."""
    thresholds = confident_thresholds(probabilities, targets)
    missing, unexpected = flag_issues(probabilities, targets, thresholds)
    distance = log_odds(probabilities) - log_odds(thresholds.positive)[None, :]  # [n, L]
    gap, implied = tree if tree is not None else (np.zeros(targets.shape, bool), None)
    missing = missing | (gap & (targets <= 0.5))
    distance = np.where(gap, distance + bonus, distance)
    rows = []
    for issue, mask, sign in ((MISSING, missing, 1.0), (UNEXPECTED, unexpected, -1.0)):
        for i, j in zip(*np.nonzero(mask)):
            rows.append({"id": ids[i], "label": labels[j], "issue": issue,
                         "score": round(sign * float(distance[i, j]), 6),
                         "probability": round(float(probabilities[i, j]), 6),
                         "threshold": round(float(thresholds.positive[j]), 6),
                         "model_score": round(float(model_scores[i, j]), 6), "split": splits[i],
                         "implied_by": "; ".join(implied[i * targets.shape[1] + j]) if implied and gap[i, j] else ""})
    rows.sort(key=lambda r: (-r["score"], r["id"], r["label"]))
    return rows
