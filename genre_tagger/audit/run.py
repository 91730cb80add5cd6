"""`genre-tagger audit`: the label review queue, fill priorities, per-genre reliability and
the report, from a checkpoint and a manifest (module docstrings of ``folds``, ``review``,
``fill``, ``genres`` say how each is computed; docs/audit.md how to read them)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from genre_tagger.audit.catalog import AuditInputs, load_inputs
from genre_tagger.audit.fill import COLUMNS as FILL_COLUMNS
from genre_tagger.audit.fill import fill_priorities
from genre_tagger.audit.folds import FOLDS, OutOfFold, gram_matrix, out_of_fold, view_matrices
from genre_tagger.audit.heads import HeadSettings, head_settings, out_of_fold_head_logits
from genre_tagger.audit.genres import COLUMNS as GENRE_COLUMNS
from genre_tagger.audit.genres import genre_rows
from genre_tagger.audit.report import write_reports
from genre_tagger.audit.result import AuditResult
from genre_tagger.audit.review import COLUMNS as REVIEW_COLUMNS
from genre_tagger.audit.review import MISSING, UNEXPECTED, log_odds, review_rows
from genre_tagger.audit.tree import BONUS, parent_gaps
from genre_tagger.errors import UserInputError
from genre_tagger.runs import prepare_run_dir, release_run_dir, say
from genre_tagger.tables import write_csv

FILES = ("label_review.csv", "fill_priorities.csv", "genres.csv", "report.md", "report.html", "summary.json")


def out_of_fold_scores(inputs: AuditInputs, folds: int = FOLDS, seed: int = 0, progress: bool = True,
                       fusion: bool = True, head: HeadSettings | None = None) -> OutOfFold:
    """Out-of-fold probabilities ``[len(inputs.labelled), L]`` of the reviewed albums: the mean
    log-odds of the Gram-matrix logistic heads (``audit/folds.py``) and of copies of the
    tagger's fusion head (``audit/heads.py``), both fitted without the album's fold
    (``fusion=False``: the logistic heads alone; ``head``: how the fusion heads train, by
    default as the checkpoint's run trained its own)."""
    if len(inputs.labelled) < 2:
        raise UserInputError(f"{inputs.manifest}: the label review needs at least two labelled albums with a genre "
                             f"the model knows and a usable modality; found {len(inputs.labelled)}")
    views = view_matrices(inputs.bundle.model, inputs.features, inputs.labelled)
    linear = out_of_fold(gram_matrix(views), inputs.targets, folds=folds, seed=seed, progress=progress)
    if not fusion:
        return linear
    fused = out_of_fold_head_logits(inputs.bundle.model, inputs.features, inputs.labelled, inputs.targets,
                                    linear.fold, head or head_settings(inputs.bundle.config), seed, progress)
    mean = (log_odds(linear.probabilities) + fused) / 2
    return OutOfFold(1.0 / (1.0 + np.exp(-mean)), linear.fold, linear.chosen_c, linear.probabilities)


def audit_catalog(checkpoint: str | Path, manifest: str | Path, output: str | Path, folds: int = FOLDS,
                  seed: int = 0, cache_dir: str | Path | None = None, batch_size: int = 32, num_workers: int = 2,
                  device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Audit ``manifest`` with the tagger of ``checkpoint`` into the new folder ``output``:
    ``label_review.csv``, ``fill_priorities.csv``, ``genres.csv``, ``report.md``,
    ``report.html`` and ``summary.json`` (docs/audit.md). Returns the summary."""
    if folds < 2:
        raise UserInputError(f"--folds must be at least 2, got {folds}")
    started = time.monotonic()
    out = prepare_run_dir(output)  # an earlier audit is never overwritten: checked before any work
    try:
        inputs = load_inputs(checkpoint, manifest, cache_dir, batch_size, num_workers, device, progress)
        say(f"fitting out-of-fold heads on {len(inputs.labelled)} labelled album(s) ({folds} folds)")
        oof = out_of_fold_scores(inputs, folds, seed, progress)
        ids = [inputs.records[i].id for i in inputs.labelled]
        tree = parent_gaps(inputs.targets, inputs.labels, oof.fold)
        review = review_rows(ids, inputs.labels, list(inputs.splits()[inputs.labelled]), oof.probabilities,
                             inputs.targets, inputs.scores[inputs.labelled], tree, BONUS)
        say("measuring what each modality adds")
        fill, counts = fill_priorities(inputs)
        genres, per_modality, in_sample = genre_rows(inputs, review)
        write_csv(out / "label_review.csv", REVIEW_COLUMNS, review)
        write_csv(out / "fill_priorities.csv", FILL_COLUMNS, fill)
        write_csv(out / "genres.csv", GENRE_COLUMNS, genres)
        summary = _summary(inputs, oof, review, fill, counts, genres, in_sample, time.monotonic() - started)
        result = AuditResult(summary, review, fill, counts, genres, per_modality, inputs.notes)
        write_reports(result, out)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing written: leave no empty folder behind
        raise
    finally:
        release_run_dir(out)
    return summary


def _summary(inputs: AuditInputs, oof: OutOfFold, review: list[dict], fill: list[dict],
             counts: dict[str, dict[str, int]], genres: list[dict], in_sample: bool, seconds: float) -> dict[str, Any]:
    return {
        "checkpoint": inputs.checkpoint, "manifest": inputs.manifest, "albums": len(inputs.records),
        "reviewed_albums": int(len(inputs.labelled)), "labels": inputs.bundle.n_labels,
        "review_rows": {MISSING: sum(r["issue"] == MISSING for r in review),
                        UNEXPECTED: sum(r["issue"] == UNEXPECTED for r in review)},
        "tree_rule_rows": sum(bool(r["implied_by"]) for r in review),
        "folds": int(oof.fold.max()) + 1, "chosen_c": oof.chosen_c,
        "fill_rows": len(fill), "modalities": counts,
        "reliable_genres": sum(g["reliable"] == "true" for g in genres),
        "genre_figures_in_sample": in_sample, "notes": inputs.notes, "seconds": round(seconds, 1),
    }
