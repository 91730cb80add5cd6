"""`genre-tagger evaluate`: metrics.json and per_label.csv for one split of a manifest."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.data.manifest import read_manifest_reporting
from genre_tagger.errors import UserInputError
from genre_tagger.labels import LabelVocabulary, describe_unknown
from genre_tagger.metrics import compute_metrics, per_label_rows, taxonomy_metrics
from genre_tagger.prediction import unconstrained


def write_per_label_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def evaluate(
    checkpoint: str | Path,
    manifest: str | Path,
    output: str | Path,
    split: str | None = "test",
    batch_size: int = 32,
    num_workers: int = 2,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate the labelled albums of ``split`` (all labelled albums when ``split`` is None)."""
    bundle = load_checkpoint(checkpoint)
    records = [r for r in read_manifest_reporting(manifest) if r.genres and (split is None or r.split == split)]
    if not records:
        raise UserInputError(f"{manifest}: no labelled album with split={split}")
    targets, unknown = LabelVocabulary(bundle.labels).encode(records)
    if unknown:
        print(f"warning: {describe_unknown(unknown)}", file=sys.stderr)
    taxonomy = bundle.taxonomy
    with unconstrained(bundle.model):  # both sides of the taxonomy's metrics from one pass
        raw, present, warnings = bundle.predict(
            records, batch_size=batch_size, num_workers=num_workers, device=device, progress=progress)
    scores = taxonomy.constrain(raw) if taxonomy else raw  # what the prediction path gives
    metrics = compute_metrics(targets, scores, bundle.thresholds, taxonomy)
    if taxonomy:
        metrics.update(taxonomy_metrics(targets, scores, raw, bundle.thresholds, taxonomy))
    metrics["presence_rates"] = {m: float(v.mean()) for m, v in present.items()}
    metrics["albums_with_warnings"] = sum(1 for w in warnings if w)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    write_per_label_csv(per_label_rows(targets, scores, bundle.thresholds, bundle.labels), out / "per_label.csv")
    return metrics
