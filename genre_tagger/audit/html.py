"""``report.html``: one self-contained page (inline CSS and SVG; no script, no external file)."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from genre_tagger.audit.charts import (
    RELIABLE, UNRELIABLE, completeness_bars, heatmap, horizontal_bars,
)
from genre_tagger.audit.result import TOP_FILL, TOP_REVIEW, AuditResult
from genre_tagger.audit.genres import MIN_ROC_AUC

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff8e1; border-left: 4px solid #e0a800; padding: 0.4rem 0.8rem; margin: 0.3rem 0; }
.missing { color: #2f6db5; font-weight: 600; } .unexpected { color: #c0504d; font-weight: 600; }
.muted { color: #666; font-size: 0.9rem; } figure { margin: 0.8rem 0; overflow-x: auto; }
"""


def _td(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        return f'<td class="num">{shown}</td>'
    return f"<td>{escape(str(value))}</td>"


def table(columns: list[str], rows: list[list[Any]], raw: set[int] = frozenset()) -> str:
    """An HTML table; cells in the ``raw`` columns are already HTML."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(str(v) if k in raw else _td(v) for k, v in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(result: AuditResult) -> str:
    s = result.summary
    parts = [f"<h1>Catalog audit</h1><p>Checkpoint <code>{escape(s['checkpoint'])}</code>, manifest "
             f"<code>{escape(s['manifest'])}</code>: {s['albums']} albums, {s['reviewed_albums']} reviewed for "
             f"labels ({s['labels']} labels), {s['seconds']:.0f} s.</p>"]
    parts += [f'<div class="note">{escape(note)}</div>' for note in result.notes]
    parts += [_completeness(result), _fill(result), _reliability(result), _carriers(result), _review(result)]
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Catalog audit</title>'
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def _completeness(result: AuditResult) -> str:
    rows = [[result.words()[m], c["present"], c["absent"], c["undecodable"]] for m, c in result.counts.items()]
    return ("<h2>Completeness</h2>" + f"<figure>{completeness_bars(result.counts, result.words())}</figure>"
            + table(["modality", "usable", "absent", "undecodable"], rows))


def _fill(result: AuditResult) -> str:
    summary = result.fill_summary()
    bars = horizontal_bars([(result.words()[r["modality"]], r["total_gain"], "#2f7d4f") for r in summary],
                           "summed expected gain per modality", value_format="{:.1f}")
    top = [[k + 1, r["id"], result.words()[r["modality"]], r["gain"], r["state"], r["has"] or "nothing",
            r["likely_genres"], r["reason"]] for k, r in enumerate(result.fill[:TOP_FILL])]
    return ("<h2>Fill first</h2><p class=\"muted\">Expected gain: the drop in the album's log-loss summed over "
            "the labels (nats), over its likely genres, if the modality were added or repaired.</p>"
            f"<figure>{bars}</figure>"
            + table(["modality", "albums lacking it", "absent", "undecodable", "total gain", "mean gain"],
                    [[result.words()[r["modality"]], r["albums"], r["absent"], r["undecodable"], r["total_gain"],
                      r["mean_gain"]] for r in summary])
            + f"<p>Top {len(top)} of {len(result.fill)} (<code>fill_priorities.csv</code>):</p>"
            + table(["#", "album", "modality", "gain", "state", "has", "likely genres", "reason"], top))


def _reliability(result: AuditResult) -> str:
    s = result.summary
    order = result.genre_order()
    items = [(result.genres[j]["label"], _number(result.genres[j]["roc_auc"]),
              RELIABLE if result.genres[j]["reliable"] == "true" else UNRELIABLE) for j in order]
    chart = horizontal_bars(items, "ROC-AUC per genre (blue: reliable, red: not)", maximum=1.0,
                            reference=MIN_ROC_AUC)
    where = "in-sample (no val/test album in the manifest)" if s["genre_figures_in_sample"] else "val/test albums"
    rows = [[g["label"], g["support"], g["roc_auc"], g["pr_auc"], g["threshold"], g["reliable"], g["carried_by"],
             g["review_rows"], g["reason"]] for g in (result.genres[j] for j in order)]
    return (f"<h2>Genre reliability</h2><p>{s['reliable_genres']} of {len(result.genres)} genres reliable "
            f"(figures on {where}; dashed line: ROC-AUC {MIN_ROC_AUC}).</p><figure>{chart}</figure>"
            + table(["genre", "support", "ROC-AUC", "PR-AUC", "threshold", "reliable", "carried by", "review rows",
                     "reason"], rows))


def _carriers(result: AuditResult) -> str:
    order = result.genre_order()
    values = np.array([[float(result.per_modality[m][j]) for m in result.modalities] for j in order])
    chart = heatmap([result.genres[j]["label"] for j in order], [result.words()[m] for m in result.modalities],
                    values.reshape(len(order), len(result.modalities)), "ROC-AUC from each modality alone")
    return ("<h2>Which modality carries each genre</h2><p class=\"muted\">ROC-AUC of the tagger from each "
            "modality alone, on the evaluated albums that have it (white: chance, blue: strong, grey: n/a).</p>"
            f"<figure>{chart}</figure>")


def _review(result: AuditResult) -> str:
    counts = result.summary["review_rows"]
    rows = [[k + 1, r["id"], r["label"], f'<td class="{r["issue"]}">{escape(r["issue"])}</td>', r["score"],
             r["probability"], r["threshold"], r["model_score"]] for k, r in enumerate(result.review[:TOP_REVIEW])]
    return (f"<h2>Review queue</h2><p>{len(result.review)} rows ({counts['missing']} missing, "
            f"{counts['unexpected']} unexpected); score = how far the out-of-fold probability lies from the "
            f"label's typical carrier, in log-odds. Top {len(rows)} (<code>label_review.csv</code>):</p>"
            + table(["#", "album", "label", "issue", "score", "out-of-fold p", "threshold", "model score"], rows,
                    raw={3}))


def _number(value: Any) -> float:
    return float(value) if value != "" else float("nan")
