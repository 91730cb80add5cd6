"""The audit's human-readable reports: ``report.md`` and a self-contained ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genre_tagger.audit.html import render_html
from genre_tagger.audit.result import TOP_FILL, TOP_REVIEW, AuditResult


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _bar(share: float, width: int = 20) -> str:
    filled = int(round(share * width))
    return "█" * filled + "░" * (width - filled)


def markdown(result: AuditResult) -> str:
    s = result.summary
    lines = ["# Catalog audit", "",
             f"Checkpoint `{s['checkpoint']}`, manifest `{s['manifest']}`: {s['albums']} albums, "
             f"{s['reviewed_albums']} reviewed for labels ({s['labels']} labels), {s['seconds']:.0f} s.", ""]
    if result.notes:
        lines += ["Notes:", ""] + [f"- {note}" for note in result.notes] + [""]
    lines += _completeness_md(result) + _fill_md(result) + _genres_md(result) + _carriers_md(result)
    lines += _review_md(result)
    return "\n".join(lines) + "\n"


def _completeness_md(result: AuditResult) -> list[str]:
    rows = []
    for modality, c in result.counts.items():
        total = max(c["present"] + c["absent"] + c["undecodable"], 1)
        rows.append([result.words()[modality], c["present"], c["absent"], c["undecodable"],
                     f"`{_bar(c['present'] / total)}` {100 * c['present'] / total:.0f} %"])
    columns = ["modality", "usable", "absent", "undecodable", "usable share"]
    return ["## Completeness", ""] + _table(columns, rows) + [""]


def _fill_md(result: AuditResult) -> list[str]:
    lines = ["## Fill first", "",
             "Expected gain: the drop in the album's log-loss summed over the labels (nats), over its likely "
             "genres, if the modality were added or repaired (`fill_priorities.csv`, highest first).", ""]
    lines += _table(["modality", "albums lacking it", "absent", "undecodable", "total gain", "mean gain"],
                    [[result.words()[r["modality"]], r["albums"], r["absent"], r["undecodable"], r["total_gain"],
                      r["mean_gain"]] for r in result.fill_summary()])
    lines += ["", f"Top {min(TOP_FILL, len(result.fill))} of {len(result.fill)}:", ""]
    lines += _table(["#", "album", "modality", "gain", "state", "has", "likely genres"],
                    [[k + 1, r["id"], result.words()[r["modality"]], r["gain"], r["state"], r["has"] or "nothing",
                      r["likely_genres"]] for k, r in enumerate(result.fill[:TOP_FILL])])
    return lines + [""]


def _genres_md(result: AuditResult) -> list[str]:
    s = result.summary
    where = ("every labelled album (the manifest has no val/test album: in-sample, optimistic)"
             if s["genre_figures_in_sample"] else "the labelled val/test albums")
    lines = ["## Genre reliability", "",
             f"{s['reliable_genres']} of {len(result.genres)} genres reliable; figures on {where}.", ""]
    rows = [[g["label"], g["support"], g["roc_auc"], g["pr_auc"], g["threshold"], g["reliable"], g["carried_by"],
             g["review_rows"], g["reason"]] for g in (result.genres[j] for j in result.genre_order())]
    return lines + _table(["genre", "support", "ROC-AUC", "PR-AUC", "threshold", "reliable", "carried by",
                           "review rows", "reason"], rows) + [""]


def _carriers_md(result: AuditResult) -> list[str]:
    words = result.words()
    lines = ["## Which modality carries each genre", "",
             "ROC-AUC of the tagger from each modality alone, on the evaluated albums that have it; **bold** = "
             "the best.", ""]
    rows = []
    for j in result.genre_order():
        values = {m: float(result.per_modality[m][j]) for m in result.modalities}
        best = max((v for v in values.values() if np.isfinite(v)), default=None)
        rows.append([result.genres[j]["label"]] + [
            ("n/a" if not np.isfinite(v) else (f"**{v:.2f}**" if v == best else f"{v:.2f}")) for v in values.values()])
    return lines + _table(["genre"] + [words[m] for m in result.modalities], rows) + [""]


def _review_md(result: AuditResult) -> list[str]:
    counts = result.summary["review_rows"]
    lines = ["## Review queue", "",
             f"{len(result.review)} rows ({counts['missing']} missing, {counts['unexpected']} unexpected); score = "
             "how far the out-of-fold probability lies from the label's typical carrier, in log-odds. Top "
             f"{min(TOP_REVIEW, len(result.review))}:", ""]
    lines += _table(["#", "album", "label", "issue", "score", "out-of-fold p", "threshold", "model score"],
                    [[k + 1, r["id"], r["label"], r["issue"], r["score"], r["probability"], r["threshold"],
                      r["model_score"]] for k, r in enumerate(result.review[:TOP_REVIEW])])
    return lines + [""]


def write_reports(result: AuditResult, out: Path) -> None:
    (out / "report.md").write_text(markdown(result), encoding="utf-8")
    (out / "report.html").write_text(render_html(result), encoding="utf-8")
