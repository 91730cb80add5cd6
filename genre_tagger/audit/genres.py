"""Per-genre reliability: how well the tagger ranks each genre, and which modality carries it.

Measured on the labelled albums the tagger did not train on (``split`` val or test; when the
manifest has none, on every labelled album, and the report says the figures are in-sample):
ROC-AUC and PR-AUC of the tagger's scores per label, and, per modality, the ROC-AUC of the
tagger scoring the albums that have that modality from it alone (``TaggerBundle.scores(...,
modalities=[m])``). A genre is ``reliable`` when it has at least ``MIN_POSITIVES`` carriers
among those albums, a ROC-AUC of at least ``MIN_ROC_AUC`` and a PR-AUC of at least
``MIN_PR_LIFT`` times its base rate (for genres on more than a third of the albums: halfway
from the base rate to 1); ``reason`` says which test failed.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from genre_tagger.audit.catalog import AuditInputs

MIN_POSITIVES, MIN_ROC_AUC, MIN_PR_LIFT = 5, 0.75, 2.0
HELD_OUT_SPLITS = ("val", "test")
COLUMNS = ("label", "support", "roc_auc", "pr_auc", "threshold", "reliable", "reason", "evaluated_positives",
           "evaluated_albums", "base_rate", "carried_by", "review_rows")


def evaluation_rows(inputs: AuditInputs) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(rows into records, their targets, in_sample)``: the reviewed albums of the held-out
    splits, or all of them (``in_sample`` True) when there are none."""
    splits = inputs.splits()[inputs.labelled]
    held = np.isin(splits, HELD_OUT_SPLITS)
    if held.sum() >= 2:
        return inputs.labelled[held], inputs.targets[held], False
    return inputs.labelled, inputs.targets, True


def _auc(targets: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    if targets.min(initial=1) == targets.max(initial=0):
        return float("nan"), float("nan")
    return float(roc_auc_score(targets, scores)), float(average_precision_score(targets, scores))


def modality_aucs(inputs: AuditInputs, rows: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """``{m: [L]}`` ROC-AUC per label of the tagger from ``m`` alone, over the ``rows`` that have ``m``."""
    out = {}
    for modality in inputs.modalities:
        has = inputs.present[modality][rows]
        alone = inputs.bundle.scores(inputs.features, modalities=[modality], rows=rows[has]) if has.any() else None
        out[modality] = np.array([_auc(targets[has, j], alone[:, j])[0] if alone is not None else float("nan")
                                  for j in range(targets.shape[1])])
    return out


def verdict(positives: int, roc_auc: float, pr_auc: float, base_rate: float) -> tuple[bool, str]:
    """``(reliable, reason)`` of one genre (module docstring)."""
    problems = []
    if positives < MIN_POSITIVES:
        problems.append(f"too few evaluated albums with it ({positives}; at least {MIN_POSITIVES} needed to judge)")
    if np.isfinite(roc_auc) and roc_auc < MIN_ROC_AUC:
        problems.append(f"weak ranking (ROC-AUC {roc_auc:.2f} < {MIN_ROC_AUC:.2f})")
    needed = min(MIN_PR_LIFT * base_rate, (1 + base_rate) / 2)
    if np.isfinite(pr_auc) and pr_auc < needed:
        problems.append(f"low precision (PR-AUC {pr_auc:.2f} < {needed:.2f}, base rate {base_rate:.2f})")
    if not problems and not np.isfinite(roc_auc):
        problems.append("no album without it to compare with")
    return (not problems), ("; ".join(problems) or "ok")


def genre_rows(inputs: AuditInputs, review: list[dict]) -> tuple[list[dict], dict[str, np.ndarray], bool]:
    """Rows of ``genres.csv`` (label order), the per-modality ROC-AUCs ``{m: [L]}`` (the
    report's heatmap) and whether the figures are in-sample."""
    rows_, targets, in_sample = evaluation_rows(inputs)
    scores = inputs.scores[rows_]
    per_modality = modality_aucs(inputs, rows_, targets)
    flagged: dict[str, int] = {}
    for row in review:
        flagged[row["label"]] = flagged.get(row["label"], 0) + 1
    out = []
    for j, label in enumerate(inputs.labels):
        positives = int(targets[:, j].sum())
        base_rate = positives / max(len(rows_), 1)
        roc_auc, pr_auc = _auc(targets[:, j], scores[:, j])
        reliable, reason = verdict(positives, roc_auc, pr_auc, base_rate)
        carriers = {m: a[j] for m, a in per_modality.items() if np.isfinite(a[j])}
        out.append({"label": label, "support": int(inputs.targets[:, j].sum()), "roc_auc": _round(roc_auc),
                    "pr_auc": _round(pr_auc), "threshold": _round(float(inputs.bundle.thresholds[j])),
                    "reliable": "true" if reliable else "false", "reason": reason,
                    "evaluated_positives": positives, "evaluated_albums": len(rows_), "base_rate": _round(base_rate),
                    "carried_by": max(carriers, key=carriers.get) if carriers else "",
                    "review_rows": flagged.get(label, 0)})
    return out, per_modality, in_sample


def _round(value: float) -> float | str:
    return round(float(value), 4) if np.isfinite(value) else ""
