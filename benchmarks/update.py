"""`genre-tagger update` on the demo catalog: what it costs, what it keeps, what it refuses.

The demo's catalog (family 1, 400 albums, 50 genres, seed 0) split into an "old" catalog and
what arrives later: 20 % of the training albums held back, and one genre (the one with 3-8
training albums and the most test albums, no other genre's parent) left out of the old
labels. `train` (the demo's `--taxonomy auto`, search off) on the old catalog once, then
`update` from its checkpoint (every run on the same test albums, embeddings from the cache):

(a) the whole catalog: the held-back albums and the new genre (a handful of training albums);
(b) the old catalog again (same data, same seed): must be accepted;
(c) the old catalog with the training and validation albums' genre lists shuffled among
    them (test untouched): must be refused at the default tolerance;
and the refit noise: the old catalog again with ``--seeds`` other seeds (forced, so every
run is kept), the drop in macro ROC-AUC over the old labels of each, and the gap between any
two of these same-data refits (the old model is one refit among others): the default tolerance
(``genre_tagger.training.update.TOLERANCE``) is that gap's 95th percentile, far below (c)'s drop.

    python benchmarks/update.py --workdir /tmp/update_bench --seeds 10

Reuses the catalog, the base model and the embedding cache in ``--workdir`` when they exist.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np

from genre_tagger.data.synthetic import write_catalog
from genre_tagger.data.synthetic.vocabulary import build_vocabulary
from genre_tagger.errors import UserInputError
from genre_tagger.training import train
from genre_tagger.training.update import TOLERANCE, update

CONFIG = ["search/off"]  # the joint search space is refit by `update` too; left out to time the tagger alone


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def pick_new_label(records: list[dict], n_labels: int) -> str:
    """A genre with 3-8 training albums, the most test albums, and no child in the catalog."""
    parents = {p for p in build_vocabulary(n_labels).parent.values() if p}
    count = {split: {} for split in ("train", "test")}
    for record in records:
        if record.get("split") in count:
            for genre in record.get("genres") or []:
                count[record["split"]][genre] = count[record["split"]].get(genre, 0) + 1
    fits = [g for g, n in count["train"].items() if 3 <= n <= 8 and g not in parents]
    return max(fits, key=lambda g: (count["test"].get(g, 0), g))


def make_manifests(catalog: Path, n_labels: int, seed: int) -> tuple[Path, Path, Path, str]:
    """``(old, whole, shuffled, new label)`` manifests beside the catalog's."""
    records = read(catalog)
    new_label = pick_new_label(records, n_labels)
    rng = random.Random(seed)
    train_ids = [r["id"] for r in records if r.get("split") == "train"]
    later = set(rng.sample(train_ids, len(train_ids) // 5))
    old = [{**r, "genres": [g for g in r["genres"] if g != new_label] if r.get("genres") else r.get("genres")}
           for r in records if r["id"] not in later]
    shuffled = [dict(r) for r in old]
    movable = [i for i, r in enumerate(shuffled) if r.get("split") in ("train", "val") and r.get("genres")]
    lists = [shuffled[i]["genres"] for i in movable]
    rng.shuffle(lists)
    for i, genres in zip(movable, lists):
        shuffled[i]["genres"] = genres
    folder = catalog.parent
    return (write(folder / "manifest_old.jsonl", old), write(folder / "manifest_whole.jsonl", records),
            write(folder / "manifest_shuffled.jsonl", shuffled), new_label)


def run_update(base: Path, manifest: Path, out: Path, **options) -> dict:
    """One `update`; its comparison, wall time and whether ``model.ckpt`` was written. A run
    already measured (``out/bench.json``) is read back, so that a stopped benchmark resumes."""
    done = out / "bench.json"
    if done.is_file():
        return json.loads(done.read_text())
    shutil.rmtree(out, ignore_errors=True)
    clock = time.monotonic()
    try:
        update(base / "model.ckpt", manifest, out, progress=False, **options)
    except UserInputError:
        pass  # refused: metrics.json and update_report.md are written all the same
    seconds = time.monotonic() - clock
    change = json.loads((out / "metrics.json").read_text())["update"]
    result = {**change, "seconds": seconds, "written": (out / "model.ckpt").is_file()}
    done.write_text(json.dumps(result))
    print(f"{out.name}: {result['old_labels_old']:.4f} -> {result['old_labels_new']:.4f} in {seconds:.0f} s",
          flush=True)
    return result


def _figure(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="benchmarks/_work/update")
    parser.add_argument("--albums", type=int, default=400)
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=10, help="refits of the same data for the noise")
    args = parser.parse_args()
    work = Path(args.workdir)
    catalog = work / "catalog" / "manifest.jsonl"
    if not catalog.is_file():
        write_catalog(catalog.parent, n_albums=args.albums, seed=args.seed, n_labels=args.labels, progress=False)
    old, whole, shuffled, new_label = make_manifests(catalog, args.labels, args.seed)
    base = work / "base"
    if not (base / "model.ckpt").is_file():
        shutil.rmtree(base, ignore_errors=True)
        clock = time.monotonic()
        train(old, base, config_files=CONFIG, progress=False, taxonomy="auto", wandb_mode="disabled")
        print(f"base model trained in {time.monotonic() - clock:.0f} s")
    a = run_update(base, whole, work / "a_whole")
    b = run_update(base, old, work / "b_same")
    c = run_update(base, shuffled, work / "c_shuffled")
    noise = [run_update(base, old, work / f"noise_{s}", seed=s, force=True) for s in range(1, args.seeds + 1)]
    drops = np.array([n["old_labels_old"] - n["old_labels_new"] for n in noise])
    print(f"new label: {new_label}; old labels' macro ROC-AUC on {a['n_albums']} {a['split']} albums; "
          f"default tolerance {TOLERANCE:g}\n")
    print("| update | wall time | old model | new model | change | written |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in (("(a) + held-back albums, + the new genre", a), ("(b) same data, same seed", b),
                    ("(c) training labels shuffled", c)):
        print(f"| {name} | {r['seconds']:.0f} s | {r['old_labels_old']:.4f} | {r['old_labels_new']:.4f} | "
              f"{r['old_labels_new'] - r['old_labels_old']:+.4f} | {'yes' if r['written'] else 'no (refused)'} |")
    for fresh in a.get("new_label_reliability") or []:
        low, high, auc = (_figure(fresh["interval"][0]), _figure(fresh["interval"][1]), _figure(fresh["roc_auc"]))
        print(f"\nnew genre {fresh['label']}: {fresh['train_albums']} training albums, ROC-AUC {auc} ({low} to {high}): "
              f"{fresh['verdict']}")
    print(f"\nsame data, seeds 1-{args.seeds}: drop in macro ROC-AUC over the old labels "
          + ", ".join(f"{d:+.4f}" for d in drops)
          + f"; mean {drops.mean():+.4f}, sd {drops.std(ddof=1):.4f}, 95th percentile {np.percentile(drops, 95):+.4f}, "
          f"max {drops.max():+.4f}; update wall time {np.mean([n['seconds'] for n in noise]):.0f} s on average")
    refits = np.array([r["old_labels_new"] for r in (b, *noise)])
    gaps = np.array([x - y for i, x in enumerate(refits) for j, y in enumerate(refits) if i != j])
    print(f"between two same-data refits ({len(refits)} refits, sd {refits.std(ddof=1):.4f}): 95th percentile of the "
          f"gap {np.percentile(gaps, 95):.4f} (normal approximation {1.645 * np.sqrt(2) * refits.std(ddof=1):.4f}), "
          f"max {gaps.max():.4f}: the basis of the default tolerance")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
