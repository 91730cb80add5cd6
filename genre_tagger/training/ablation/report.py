"""The ablation's outputs: ``ablation.csv``, ``ablation.md``, ``ablation.png``, ``per_label.csv``
and ``ablation.json``, from the scored (setting, subset) results of ``genre_tagger.training.ablation.runner``.

Rows (one per setting and subset) hold the tagging metrics (docs/metrics.md) of the evaluated split plus
``setting``, ``modalities``, ``albums_with_input`` (albums with at least one of the row's
modalities; the others are scored from the fusion's "nothing known" state) and
``val_macro_roc_auc``. When the checkpoint the encoders come from holds a genre taxonomy,
every row also gets the taxonomy's metrics (``TAXONOMY_COLUMNS`` and ``macro_roc_auc_level_<depth>``),
from the row's own scores and thresholds with and without the tree's constraint, and
``ablation.md`` a second table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genre_tagger.metrics import macro_roc_auc, ranked_for_resampling, resampled_macro_roc_auc, taxonomy_metrics
from genre_tagger.tables import write_csv
from genre_tagger.taxonomy import Taxonomy

TRAINED = "trained_on_subset"
AT_INFERENCE = "full_model_subset_at_inference"
SETTINGS_ORDER = (TRAINED, AT_INFERENCE)
SETTING_TITLES = {
    TRAINED: "Trained on the subset",
    AT_INFERENCE: "Full model (trained on all), only the subset at inference",
}
# MuMu paper, real data (31k albums, 250 genres): a sense of scale, not a target.
MUMU_REFERENCE = {"audio": 0.888, "image": 0.743, "text": 0.917, "audio+image+text": 0.936}
CSV_COLUMNS = (
    "setting", "modalities", "n_modalities", "split", "albums", "albums_with_input", "macro_roc_auc",
    "micro_roc_auc", "macro_pr_auc", "micro_pr_auc", "micro_f1", "macro_f1", "coverage_at_1",
    "labels_evaluated", "val_macro_roc_auc", "head_training_s",
)

# With a taxonomy: macro ROC-AUC of the constrained scores; the share of albums whose labels over
# the thresholds hold a genre without its parent, raw and with the tree (ancestors added);
# hierarchical F1 (ancestors counted on both sides). Then one macro ROC-AUC per tree level.
TAXONOMY_COLUMNS = ("macro_roc_auc_tree", "inconsistent_albums_raw", "inconsistent_albums_tree", "hierarchical_f1")


def _name(subset: tuple[str, ...]) -> str:
    return "+".join(subset)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "n/a"


def ordered_rows(results: dict, subsets: list[tuple[str, ...]]) -> list[dict[str, Any]]:
    """CSV rows: every trained subset (singles first), then every at-inference subset."""
    return [results[(setting, s)].row for setting in SETTINGS_ORDER for s in subsets if (setting, s) in results]


def per_label_table(results: dict, subsets: list[tuple[str, ...]], labels: list[str]) -> list[dict[str, Any]]:
    """One row per label: ``positives`` on the evaluated split and, per trained subset, its ROC-AUC."""
    table = []
    for index, label in enumerate(labels):
        row: dict[str, Any] = {"label": label, "positives": None}
        for subset in subsets:
            entry = results[(TRAINED, subset)].per_label[index]
            row["positives"] = entry["positives"]
            row[_name(subset)] = entry["roc_auc"]
        table.append(row)
    return table


def bootstrap_gain(
    targets: np.ndarray, better: np.ndarray, worse: np.ndarray, rounds: int = 300, level: float = 0.9, seed: int = 0,
) -> tuple[float, float]:
    """Interval of ``macro AUC(better) - macro AUC(worse)`` over albums resampled with replacement.

    It says how much of a gap the evaluated albums can tell apart from noise (it does not
    cover retraining noise). ``targets``, ``better``, ``worse``: ``[N, L]``.
    """
    rng = np.random.default_rng(seed)
    ranked = [ranked_for_resampling(targets, scores) for scores in (better, worse)]
    gains = []
    for _ in range(rounds):
        counts = np.bincount(rng.integers(0, len(targets), len(targets)), minlength=len(targets))
        gains.append(resampled_macro_roc_auc(ranked[0], counts) - resampled_macro_roc_auc(ranked[1], counts))
    gains = np.array(gains)[np.isfinite(gains)]
    if not len(gains):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    return float(np.percentile(gains, tail)), float(np.percentile(gains, 100 - tail))


def findings(results: dict, subsets: list[tuple[str, ...]], targets: np.ndarray | None = None) -> dict[str, Any]:
    """The numbers the report leads with (macro ROC-AUC on the evaluated split).

    ``fused_vs_best_single``: the all-modality model against the best single-modality one,
    with a 90% bootstrap interval of the gain when ``targets [N_eval, L]`` are given.
    ``absence_costs``: per modality, how much the full model loses when it is absent at
    inference, and how much less a model trained without it reaches.
    """
    auc = {(setting, _name(s)): results[(setting, s)].row["macro_roc_auc"] for (setting, s) in results}
    full = _name(subsets[-1])
    singles = [_name(s) for s in subsets if len(s) == 1]
    out: dict[str, Any] = {"fused": full, "fused_macro_roc_auc": auc[(TRAINED, full)]}
    finite_singles = [s for s in singles if _finite(auc[(TRAINED, s)])]
    if len(subsets[-1]) > 1 and finite_singles:
        best = max(finite_singles, key=lambda s: auc[(TRAINED, s)])
        out["fused_vs_best_single"] = {
            "best_single": best, "best_single_macro_roc_auc": auc[(TRAINED, best)],
            "gain": auc[(TRAINED, full)] - auc[(TRAINED, best)],
            "fused_beats_every_single": all(auc[(TRAINED, full)] > auc[(TRAINED, s)] for s in finite_singles),
        }
        fused_scores = results[(TRAINED, subsets[-1])].scores
        best_scores = results[(TRAINED, (best,))].scores
        if targets is not None and fused_scores is not None and best_scores is not None:
            out["fused_vs_best_single"]["gain_interval_90"] = bootstrap_gain(targets, fused_scores, best_scores)
    costs = {}
    if len(subsets[-1]) > 1:
        for modality in subsets[-1]:
            rest = _name(tuple(m for m in subsets[-1] if m != modality))
            costs[modality] = {
                "without": rest,
                "full_model_drop": auc[(AT_INFERENCE, full)] - auc[(AT_INFERENCE, rest)],
                "retrained_drop": auc[(TRAINED, full)] - auc[(TRAINED, rest)],
            }
    out["absence_costs"] = costs
    out["subset_gaps"] = subset_gaps(results, subsets, targets)
    return out


def subset_gaps(results: dict, subsets: list[tuple[str, ...]], targets: np.ndarray | None) -> dict[str, Any]:
    """Per smaller subset: the full model restricted to it minus the head trained on it (macro
    ROC-AUC), with a 90% paired bootstrap interval over the evaluated albums when ``targets
    [N_eval, L]`` are given: whether one model serves albums that lack modalities as well as
    a model trained for what they have."""
    gaps = {}
    for subset in subsets[:-1]:
        trained, restricted = results.get((TRAINED, subset)), results.get((AT_INFERENCE, subset))
        if trained is None or restricted is None:
            continue
        gap = {"gap": restricted.row["macro_roc_auc"] - trained.row["macro_roc_auc"]}
        if targets is not None and trained.scores is not None and restricted.scores is not None:
            gap["gap_interval_90"] = bootstrap_gain(targets, restricted.scores, trained.scores)
        gaps[_name(subset)] = gap
    return gaps


def ablation_taxonomy(bundle: Any, labels: list[str]) -> Taxonomy | None:
    """The checkpoint's taxonomy over the ablation's ``labels`` (links whose two labels it has),
    or None (no checkpoint, no taxonomy, or no link left)."""
    stored = getattr(bundle, "taxonomy", None) if bundle is not None else None
    if not stored:
        return None
    known = set(labels)
    links = [(c, p) for c, p in stored.links if c in known and p in known]
    return Taxonomy(list(labels), links) if links else None


def taxonomy_columns(targets: np.ndarray, raw: np.ndarray, thresholds: np.ndarray, taxonomy: Taxonomy) -> dict:
    """A row's taxonomy metrics from its raw scores ``[N, L]`` and thresholds ``[L]``."""
    tree = taxonomy.constrain(raw)
    found = taxonomy_metrics(targets, tree, raw, thresholds, taxonomy)
    row = {"macro_roc_auc_tree": macro_roc_auc(targets, tree),
           "inconsistent_albums_raw": found["inconsistent_albums_unconstrained"],
           "inconsistent_albums_tree": found["inconsistent_albums"], "hierarchical_f1": found["hierarchical_f1"]}
    row.update({f"macro_roc_auc_level_{level}": v for level, v in found["macro_roc_auc_by_level"].items()})
    return row


def add_taxonomy_columns(results: dict, targets: np.ndarray, taxonomy: Taxonomy) -> list[str]:
    """Every row with ``taxonomy_columns`` (thresholds from its per-label rows); the column names."""
    for result in results.values():
        if result.scores is not None:
            thresholds = np.array([entry["threshold"] for entry in result.per_label])
            result.row.update(taxonomy_columns(targets, result.scores, thresholds, taxonomy))
    levels = sorted({int(level) for level in taxonomy.depths().tolist()})
    return [*TAXONOMY_COLUMNS, *(f"macro_roc_auc_level_{level}" for level in levels)]


def _share(value: Any) -> str:
    return f"{100 * value:.0f} %" if _finite(value) else "n/a"


def taxonomy_table(rows: list[dict[str, Any]], columns: list[str], links: int) -> list[str]:
    """``ablation.md``'s second table: the taxonomy's metrics per setting and subset."""
    levels = [c for c in columns if c.startswith("macro_roc_auc_level_")]
    lines = [f"## With the genre tree ({links} links, from the checkpoint)", "",
             "Scores constrained so that no ancestor scores below a descendant; inconsistent = albums whose "
             "genres over the thresholds hold one without its parent (raw: the unconstrained scores; tree: the "
             "ancestors added, as `tag` lists them). Thresholds: each row's own.", "",
             "| setting | modalities | macro ROC-AUC raw | with the tree | inconsistent raw | with the tree | "
             "hierarchical F1 | " + " | ".join(f"AUC level {c.rsplit('_', 1)[1]}" for c in levels) + " |",
             "|---|---|" + "---:|" * (5 + len(levels))]
    for row in rows:
        setting = "trained" if row["setting"] == TRAINED else "full model"
        cells = [_fmt(row["macro_roc_auc"]), _fmt(row.get("macro_roc_auc_tree")),
                 _share(row.get("inconsistent_albums_raw")), _share(row.get("inconsistent_albums_tree")),
                 _fmt(row.get("hierarchical_f1")), *(_fmt(row.get(c)) for c in levels)]
        lines.append(f"| {setting} | {row['modalities']} | " + " | ".join(cells) + " |")
    return lines + [""]


# ---------------------------------------------------------------------------- markdown


def _md_table(rows: list[dict[str, Any]], fused: str) -> list[str]:
    best = max((r["macro_roc_auc"] for r in rows if _finite(r["macro_roc_auc"])), default=None)
    lines = ["| modalities | macro ROC-AUC | micro ROC-AUC | macro PR-AUC | micro F1 | macro F1 | coverage@1 "
             "| albums with input |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        is_fused = row["modalities"] == fused and row["n_modalities"] > 1
        name = f"{row['modalities']} (all)" if is_fused else row["modalities"]
        auc = _fmt(row["macro_roc_auc"])
        if best is not None and row["macro_roc_auc"] == best:
            auc = f"**{auc}**"
        lines.append(f"| {name} | {auc} | {_fmt(row['micro_roc_auc'])} | {_fmt(row['macro_pr_auc'])} | "
                     f"{_fmt(row['micro_f1'])} | {_fmt(row['macro_f1'])} | {_fmt(row['coverage_at_1'])} | "
                     f"{row['albums_with_input']}/{row['albums']} |")
    return lines


def _headline(found: dict[str, Any]) -> list[str]:
    lines = []
    versus = found.get("fused_vs_best_single")
    if versus:
        verdict = "beats every single modality" if versus["fused_beats_every_single"] else \
            "does NOT beat every single modality"
        interval = versus.get("gain_interval_90")
        spread = ""
        if interval and all(_finite(v) for v in interval):
            spread = (f" (90% bootstrap interval over the evaluated albums: {interval[0]:+.3f} to {interval[1]:+.3f}"
                      f"{'; within noise' if interval[0] <= 0 <= interval[1] else ''})")
        lines.append(f"**Fused ({found['fused']}) {_fmt(found['fused_macro_roc_auc'])} vs best single modality "
                     f"({versus['best_single']}) {_fmt(versus['best_single_macro_roc_auc'])}: "
                     f"{versus['gain']:+.3f} macro ROC-AUC; the fused model {verdict}.**{spread}")
    costs = found["absence_costs"]
    if costs:
        full = found["fused_macro_roc_auc"]

        def change(before: float, drop: float) -> str:
            return f"{_fmt(before)} -> {_fmt(before - drop)} ({-drop:+.3f})" if _finite(drop) else "n/a"

        lost = "; ".join(f"without {m}: {change(full, c['full_model_drop'])}" for m, c in costs.items())
        retrained = "; ".join(f"without {m}: {change(full, c['retrained_drop'])}" for m, c in costs.items())
        lines += ["", f"What each absence costs the full model (macro ROC-AUC when the modality is missing at "
                      f"inference): {lost}.", "",
                  f"Trained without it instead: {retrained}."]
    return lines


def interval_verdict(interval: Any) -> str:
    """``ahead`` / ``behind`` when a ``(low, high)`` interval of a difference excludes 0,
    ``level within noise`` when it holds 0, ``n/a`` when it is missing or not finite."""
    if not interval or not all(_finite(v) for v in interval):
        return "n/a"
    low, high = interval
    return "ahead" if low > 0 else "behind" if high < 0 else "level within noise"


def _gap_table(gaps: dict[str, Any]) -> list[str]:
    """Markdown lines: per subset, full model restricted minus trained on it, with its interval."""
    if not gaps:
        return []
    lines = ["## Full model with only the subset vs trained on the subset", "",
             "| modalities | full model minus trained on subset | 90% bootstrap interval | verdict |",
             "|---|---:|---|---|"]
    for name, gap in gaps.items():
        verdict = interval_verdict(gap.get("gap_interval_90"))
        interval = "n/a" if verdict == "n/a" else "{:+.3f} to {:+.3f}".format(*gap["gap_interval_90"])
        lines.append(f"| {name} | {gap['gap']:+.3f} | {interval} | {verdict} |")
    return lines + [""]


def markdown_report(rows: list[dict[str, Any]], found: dict[str, Any], summary: dict[str, Any]) -> str:
    """``ablation.md``: headline findings, then one table per setting (same rows as the CSV)."""
    split, albums = summary["split"], summary["albums"][summary["split"]]
    presence = ", ".join(f"{m} {100 * v:.0f}%" for m, v in summary["presence_rates"].items())
    lines = ["# Modality ablation", "",
             f"Manifest `{summary['manifest']}`; metrics on split={split} ({albums} albums, "
             f"{summary['labels']} labels in the vocabulary). Present in that split: {presence}.", ""]
    if split != "test":
        lines += ["> The manifest has no test split: these are val metrics, the split that also picked the "
                  "epochs and thresholds, so they are optimistic.", ""]
    for modality, reason in summary["modalities_absent"].items():
        lines += [f"> **{modality} is absent**: {reason}; every subset that needs it was skipped.", ""]
    lines += _headline(found) + [""]
    for setting in (TRAINED, AT_INFERENCE):
        setting_rows = [r for r in rows if r["setting"] == setting]
        lines += [f"## {SETTING_TITLES[setting]}", ""] + _md_table(setting_rows, found["fused"]) + [""]
    lines += _gap_table(found.get("subset_gaps", {}))
    lines += [
        "Notes: every run shares the split, the frozen encoders and the cached embeddings. Trained rows "
        "calibrate their thresholds on val; full-model rows keep the full model's thresholds, as a deployed "
        "model would. An album with none of a row's modalities is still scored (from the fusion's "
        "\"nothing known\" state) and counted: \"albums with input\" says how many had one.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- chart


STYLES = {
    TRAINED: dict(marker="o", color="#1f77b4", label="trained on the subset"),
    AT_INFERENCE: dict(marker="s", color="#ff7f0e", label="full model (trained on all), only the subset at inference"),
}


def _draw_panel(ax, by_key: dict, names: list[str], ys: list[int], metric: str) -> None:
    """Dots per (setting, subset) on one metric, joined per subset; trained values written above."""
    for y, name in zip(ys, names):
        pair = [by_key[(s, name)][metric] for s in SETTINGS_ORDER if (s, name) in by_key]
        if len(pair) == 2 and all(_finite(v) for v in pair):
            ax.plot(pair, [y, y], color="0.8", linewidth=2, zorder=1)
    for setting, style in STYLES.items():
        points = [(by_key[(setting, n)][metric], y) for y, n in zip(ys, names)
                  if (setting, n) in by_key and _finite(by_key[(setting, n)][metric])]
        if not points:
            continue
        ax.scatter([x for x, _ in points], [y for _, y in points], s=60, zorder=3, **style)
        above = setting == TRAINED  # trained values above the dot, at-inference ones below
        for x, y in points:
            ax.annotate(f"{x:.3f}", (x, y), xytext=(0, 7 if above else -13), textcoords="offset points",
                        ha="center", fontsize=7.5, color=style["color"])


def draw_chart(rows: list[dict[str, Any]], subsets: list[tuple[str, ...]], summary: dict[str, Any], path: Path) -> None:
    """``ablation.png``: one line per subset (singles on top, all modalities at the bottom),
    macro ROC-AUC (left) and macro PR-AUC (right), the two settings as dots side by side."""
    names = [_name(s) for s in subsets]
    by_key = {(r["setting"], r["modalities"]): r for r in rows}
    figure = Figure(figsize=(10, 1.8 + 0.6 * len(names)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    ys = list(range(len(names)))[::-1]
    for ax, metric, title in ((axes[0], "macro_roc_auc", "macro ROC-AUC"), (axes[1], "macro_pr_auc", "macro PR-AUC")):
        _draw_panel(ax, by_key, names, ys, metric)
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        ax.set_ylim(-0.7, len(names) - 0.3)
        for y, previous, subset in zip(ys[1:], subsets, subsets[1:]):
            if len(subset) != len(previous):  # separate singles, pairs, all
                ax.axhline(y + 0.5, color="0.85", linewidth=0.8)
    singles = [by_key[(TRAINED, n)]["macro_roc_auc"] for n, s in zip(names, subsets) if len(s) == 1]
    singles = [v for v in singles if _finite(v)]
    if singles and len(subsets) > 1:
        axes[0].axvline(max(singles), color="#1f77b4", linestyle=":", linewidth=1, label="best single modality")
    reference = [(MUMU_REFERENCE[n], y) for y, n in zip(ys, names) if n in MUMU_REFERENCE]
    if reference:
        axes[0].scatter([x for x, _ in reference], [y for _, y in reference], marker="x", color="0.45", s=36,
                        zorder=2, label="MuMu paper, real data (for scale only)")
    axes[0].set_yticks(ys, [f"{n} (all)" if len(s) > 1 and s == subsets[-1] else n for n, s in zip(names, subsets)])
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8,
                  frameon=False)
    split = summary["split"]
    figure.suptitle(f"What each modality brings (higher is better): {split} split, "
                    f"{summary['albums'][split]} albums")
    figure.savefig(path, dpi=120)


# ---------------------------------------------------------------------------- files


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_scores(path: Path, results: dict, targets: np.ndarray | None) -> None:
    """``scores.npz``: every row's scores on the evaluated albums, ``<setting>/<modalities>``
    ``[N_eval, L]``, and their labels ``targets`` (when known): for paired comparisons with
    other models on the same albums."""
    arrays = {f"{setting}/{_name(subset)}": r.scores for (setting, subset), r in results.items() if r.scores is not None}
    if targets is not None:
        arrays["targets"] = np.asarray(targets)
    np.savez_compressed(path, **arrays)


def write_outputs(
    out: Path, results: dict, subsets: list[tuple[str, ...]], labels: list[str], summary: dict[str, Any],
    targets: np.ndarray | None = None, taxonomy: Taxonomy | None = None,
) -> dict[str, Any]:
    """Write every output file; return the ``ablation.json`` content (NaN as None).

    ``targets [N_eval, L]``: the evaluated split's labels, for the bootstrap interval (and,
    with a ``taxonomy``, its metrics).
    """
    extra = add_taxonomy_columns(results, targets, taxonomy) if taxonomy and targets is not None else []
    rows = ordered_rows(results, subsets)
    found = findings(results, subsets, targets)
    per_label = per_label_table(results, subsets, labels)
    write_csv(out / "ablation.csv", [*CSV_COLUMNS, *extra], rows)
    write_csv(out / "per_label.csv", ["label", "positives", *(_name(s) for s in subsets)], per_label)
    markdown = markdown_report(rows, found, summary)
    if extra:
        summary = {**summary, "taxonomy_links": len(taxonomy.links)}
        markdown += "\n" + "\n".join(taxonomy_table(rows, extra, len(taxonomy.links)))
    (out / "ablation.md").write_text(markdown, encoding="utf-8")
    write_scores(out / "scores.npz", results, targets)
    draw_chart(rows, subsets, summary, out / "ablation.png")
    report = _json_safe({**summary, "findings": found, "rows": rows, "per_label": per_label,
                         "files": {k: str(out / k) for k in ("ablation.csv", "ablation.md", "ablation.png",
                                                             "per_label.csv", "ablation.json", "scores.npz")}})
    (out / "ablation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
