"""Model vs simple-features reference: one table, and a plain verdict where the model loses."""

from __future__ import annotations

from genre_tagger.baselines.reference import ReferenceResult
from genre_tagger.data.modalities import get_modality, modality_names

FUSED = "fused"


def column_word(column: str) -> str:
    """What users read for a column: the modality's word ("cover"), or "fused"."""
    return column if column == FUSED else get_modality(column).word


def model_rows_from_ablation(report: dict) -> dict[str, dict]:
    """``{modality or "fused": metrics row}`` from an ablation report's trained-on-subset rows."""
    rows = [r for r in report["rows"] if r["setting"] == "trained_on_subset"]
    widest = max(r["n_modalities"] for r in rows)
    out = {r["modalities"]: r for r in rows if r["n_modalities"] == 1}
    if widest > 1:
        out[FUSED] = next(r for r in rows if r["n_modalities"] == widest)
    return out


def comparison_table(model: dict[str, dict], reference: ReferenceResult, metric: str = "macro_roc_auc",
                     model_name: str = "genre_tagger") -> tuple[str, list[str]]:
    """A markdown table (rows: model, reference; columns: modalities, fused) and the losses.

    Returns ``(table, losses)``; ``losses`` names every column where the model is not ahead.
    """
    columns = [c for c in (*modality_names(), FUSED) if c in model and c in reference.metrics]
    losses = [column_word(c) for c in columns if model[c][metric] <= reference.metrics[c][metric]]
    header = "| " + metric.replace("_", " ") + " | " + " | ".join(column_word(c) for c in columns) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    for name, values in ((model_name, {c: model[c][metric] for c in columns}),
                         ("simple features + LR", {c: reference.metrics[c][metric] for c in columns})):
        cells = []
        for c in columns:
            best = values[c] == max(model[c][metric], reference.metrics[c][metric])
            cells.append(f"**{values[c]:.3f}**" if best else f"{values[c]:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    verdict = ("The model is ahead of the reference everywhere." if not losses else
               "**The model does NOT beat the simple-features reference on: " + ", ".join(losses) + ".**")
    return "\n".join(lines) + "\n\n" + verdict, losses
