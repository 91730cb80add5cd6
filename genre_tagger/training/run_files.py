"""What a `train` run folder holds besides ``model.ckpt``: its config, labels, thresholds, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genre_tagger.config import dump_yaml


def write_run_files(run_dir: Path, config: dict, labels: list[str], thresholds: np.ndarray, metrics: dict) -> None:
    dump_yaml(config, run_dir / "config.yaml")
    (run_dir / "labels.txt").write_text("".join(f"{name}\n" for name in labels), encoding="utf-8")
    rows = ["label,threshold"] + [f"{json.dumps(n)},{t:.6f}" for n, t in zip(labels, thresholds)]
    (run_dir / "thresholds.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
