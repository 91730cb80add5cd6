"""What the audit's reports show: the rows written to the CSV files, the per-modality counts
and ROC-AUCs, the summary, and the orderings both reports use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genre_tagger.data.modalities import get_modality

TOP_REVIEW, TOP_FILL = 25, 15


@dataclass
class AuditResult:
    """Everything the reports show (rows as written to the CSV files)."""

    summary: dict[str, Any]
    review: list[dict]
    fill: list[dict]
    counts: dict[str, dict[str, int]]
    genres: list[dict]
    per_modality: dict[str, np.ndarray]  # {m: [L]} ROC-AUC from m alone
    notes: list[str]

    @property
    def modalities(self) -> list[str]:
        return list(self.counts)

    def words(self) -> dict[str, str]:
        return {m: get_modality(m).word for m in self.modalities}

    def fill_summary(self) -> list[dict[str, Any]]:
        """Per modality: albums lacking it (absent / undecodable), summed and mean gain."""
        out = []
        for modality in self.modalities:
            rows = [r for r in self.fill if r["modality"] == modality]
            gains = [r["gain"] for r in rows]
            out.append({"modality": modality, "albums": len(rows),
                        "absent": self.counts[modality]["absent"], "undecodable": self.counts[modality]["undecodable"],
                        "total_gain": float(np.sum(gains)) if gains else 0.0,
                        "mean_gain": float(np.mean(gains)) if gains else 0.0})
        return sorted(out, key=lambda r: -r["total_gain"])

    def genre_order(self) -> list[int]:
        """Genres, the unreliable first, each group by ROC-AUC (n/a last)."""
        def key(j: int) -> tuple:
            row = self.genres[j]
            auc = row["roc_auc"] if row["roc_auc"] != "" else 2.0
            return (row["reliable"] == "true", auc, row["label"])
        return sorted(range(len(self.genres)), key=key)
