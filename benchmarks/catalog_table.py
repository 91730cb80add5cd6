"""One table over the benchmarks of several catalogs: tagging against the simple-features
reference, the full model on each modality subset against a head trained on it, and search
against the genre-score cosine and the reference, one column per catalog.

    .venv/bin/python benchmarks/catalog_table.py NAME=QUALITY_DIR,SEARCH_DIR [NAME=... ...]

``QUALITY_DIR`` holds ``quality.json`` (``benchmarks/quality.py``'s output folder) and
``SEARCH_DIR`` ``search_quality.json`` (``benchmarks/search_quality.py`` writes it beside
the checkpoint). Nothing is recomputed: the table only reads what those runs measured.
Intervals: 90 % paired bootstrap over test albums (tagging against the reference and the
per-subset gaps), 95 % over test queries / gallery albums (search).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genre_tagger.training.ablation import TRAINED
from genre_tagger.training.ablation.report import interval_verdict

DEFAULT_PREFIX = "joint space + genre scores: shipped config"
GENRE = "tagger's genre scores, cosine"
REFERENCE_PREFIX = "simple features + LR"


def _auc(rows: list[dict], setting: str, modalities: str) -> float:
    return next(r["macro_roc_auc"] for r in rows if r["setting"] == setting and r["modalities"] == modalities)


def tagging_cells(quality: dict) -> dict[str, str]:
    """Model vs reference test macro ROC-AUC per column, and the worst per-subset gap."""
    rows, reference = quality["rows"], quality.get("reference", {}).get("metrics", {})
    intervals = quality.get("reference", {}).get("model_minus_reference_90", {})
    full = max((r for r in rows if r["setting"] == TRAINED), key=lambda r: r["n_modalities"])["modalities"]
    cells = {}
    for label, column, key in (("fused", full, "fused"), ("audio alone", "audio", "audio"),
                               ("cover alone", "image", "image"), ("text alone", "text", "text")):
        model = _auc(rows, TRAINED, column)
        ref = reference.get(key, {}).get("macro_roc_auc")
        gap = intervals.get(key)
        spread = f"{gap[0]:+.3f} [{gap[1]:+.3f}, {gap[2]:+.3f}]" if gap else f"{model - ref:+.3f}" if ref else ""
        cells[f"tagging: {label}, model vs reference (90 %)"] = (
            f"{model:.3f} vs {ref:.3f} ({spread})" if ref is not None else f"{model:.3f}")
    gaps = quality.get("findings", {}).get("subset_gaps", {})
    if gaps:
        name, worst = min(gaps.items(), key=lambda item: item[1]["gap"])
        low, high = worst.get("gap_interval_90") or (float("nan"), float("nan"))
        verdicts = [interval_verdict(g.get("gap_interval_90")) for g in gaps.values()]
        counts = ", ".join(f"{verdicts.count(v)} {v.split()[0]}" for v in ("ahead", "level within noise", "behind"))
        cells[f"per subset: full model minus trained on it, worst of {len(gaps)} [90 %]; verdicts"] = (
            f"{name} {worst['gap']:+.3f} [{low:+.3f}, {high:+.3f}]; {counts}")
    return cells


def _method(table: dict, prefix: str) -> dict | None:
    name = next((k for k in table if k.startswith(prefix)), None)
    return table[name][0] if name else None


def _delta(comparison: dict | None) -> str:
    if not comparison:
        return ""
    return f" ({comparison['delta']:+.3f} [{comparison['low']:+.3f}, {comparison['high']:+.3f}])"


def search_cells(search: dict) -> dict[str, str]:
    """Default search vectors vs genre scores vs reference, test split, with paired intervals."""
    test = search["test"]
    default, genre, ref = _method(test, DEFAULT_PREFIX), _method(test, GENRE), _method(test, REFERENCE_PREFIX)
    paired = search.get("paired (test, default minus)", {})
    vs_genre = paired.get(GENRE, {})
    vs_ref = next((v for k, v in paired.items() if k.startswith(REFERENCE_PREFIX)), {})
    cells = {}
    for label, key, compared in (("search: text -> album R@10", "text_to_album_recall_at_10", "recall_at_10"),
                                 ("search: album -> album P@10", "album_to_album_precision_at_10", "precision_at_10")):
        values = " / ".join(f"{m[key]:.3f}" if m else "n/a" for m in (default, genre, ref))
        cells[f"{label}: default / genre scores / reference"] = (
            f"{values}; vs genre{_delta(vs_genre.get(compared))}; vs reference{_delta(vs_ref.get(compared))}")
    return cells


def table(catalogs: dict[str, tuple[Path, Path]]) -> str:
    columns = {}
    for name, (quality_dir, search_dir) in catalogs.items():
        cells = tagging_cells(json.loads((quality_dir / "quality.json").read_text(encoding="utf-8")))
        cells.update(search_cells(json.loads((search_dir / "search_quality.json").read_text(encoding="utf-8"))))
        columns[name] = cells
    rows = list(dict.fromkeys(k for cells in columns.values() for k in cells))
    lines = ["| benchmark | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {row} | " + " | ".join(cells.get(row, "") for cells in columns.values()) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("catalogs", nargs="+", help="NAME=QUALITY_DIR,SEARCH_DIR")
    args = parser.parse_args()
    catalogs = {}
    for item in args.catalogs:
        name, _, dirs = item.partition("=")
        quality_dir, _, search_dir = dirs.partition(",")
        if not name or not quality_dir or not search_dir:
            parser.error(f"{item!r}: expected NAME=QUALITY_DIR,SEARCH_DIR")
        catalogs[name] = (Path(quality_dir), Path(search_dir))
    print(table(catalogs))


if __name__ == "__main__":
    main()
