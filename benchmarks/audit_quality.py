"""Catalog audit benchmark: does the review queue find planted label errors, and do fill
priorities point at the albums that gain most from a missing modality?

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audit_quality.py --workdir /tmp/audit_bench \
        [--generator synthetic|synthetic2]

Steps (each skipped when its output is already in --workdir):

1. a synthetic catalog without the generator's own label noise (``write_catalog(...,
   label_noise=0)``, or ``write_catalog2`` with ``--generator synthetic2``; 600 albums, 50
   labels, seed 11, 3 s tracks), so that its labels are the truth;
2. planted noise (``noisy.jsonl``): one label removed from ``--noise`` of the albums that have at
   least two, one wrong label added to another ``--noise`` (drawn by the labels' frequency, so
   plausible ones);
3. ``train`` on the noisy manifest (default config), then ``audit`` it;
4. (a) precision and recall of the queue's top K per kind (K = the number planted of that kind
   and twice that; a hit is a planted (album, label) pair, nothing else) against random order
   and against the trained tagger's own in-sample scores (missing: highest score among absent
   labels first; unexpected: lowest among present), alone and with the same genre-tree rule
   the audit uses; the queue's parts are ranked too (out-of-fold heads without the tree rule;
   the logistic heads alone), and a paired bootstrap over albums gives the spread of
   queue minus in-sample;
5. (b) hide and restore (``hidden.jsonl``): one modality hidden on ``--hide`` of the albums
   that have it and at least one other (each album hides at most one), ``audit`` again, then
   the hidden albums ranked by their fill gain; restoring the modality changes each album's
   per-album average precision and log-loss against the true labels: the albums ranked first
   should gain more than those ranked last.

Prints a markdown section for benchmarks/RESULTS.md and writes it to WORKDIR/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PYTHON = sys.executable


def cli(*args: str) -> float:
    clock = time.monotonic()
    subprocess.run([PYTHON, "-m", "genre_tagger.cli", "--quiet", *args], check=True)
    return time.monotonic() - clock


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def plant_noise(albums: list[dict], share: float, seed: int) -> tuple[list[dict], dict[str, list]]:
    """Remove one label from ``share`` of the albums with two or more, add one wrong label to
    another ``share`` (drawn by label frequency). Returns the noisy albums and the planted pairs."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    for album in albums:
        for genre in album["genres"]:
            counts[genre] = counts.get(genre, 0) + 1
    labels, weights = list(counts), [counts[g] for g in counts]
    order = list(range(len(albums)))
    rng.shuffle(order)
    n = int(round(share * len(albums)))
    removable = [i for i in order if len(albums[i]["genres"]) >= 2][:n]
    addable = [i for i in order if i not in set(removable)][:n]
    noisy = [dict(a, genres=list(a["genres"])) for a in albums]
    planted: dict[str, list] = {"missing": [], "unexpected": []}
    for i in removable:
        label = rng.choice(sorted(noisy[i]["genres"]))
        noisy[i]["genres"].remove(label)
        planted["missing"].append([noisy[i]["id"], label])
    for i in addable:
        while True:
            label = rng.choices(labels, weights)[0]
            if label not in noisy[i]["genres"]:
                break
        noisy[i]["genres"].append(label)
        planted["unexpected"].append([noisy[i]["id"], label])
    return noisy, planted


def hide_modalities(albums: list[dict], share: float, seed: int) -> tuple[list[dict], dict[str, str]]:
    """Hide one modality on ``share`` of the albums that have it and another (disjoint albums)."""
    from genre_tagger.data.modalities import get_modality, modality_names

    rng = random.Random(seed)
    hidden: dict[str, str] = {}
    out = [dict(a) for a in albums]
    fields = {m: get_modality(m).fields for m in modality_names()}
    for modality in modality_names():
        has = [i for i, a in enumerate(albums) if a["id"] not in hidden
               and any(a.get(f) for f in fields[modality])
               and any(a.get(f) for m in fields if m != modality for f in fields[m])]
        for i in rng.sample(has, int(round(share * len(has)))):
            for field in fields[modality]:
                out[i][field] = None
            hidden[albums[i]["id"]] = modality
    return out, hidden


def derived_manifest(clean: Path, manifest: Path, record: Path, change) -> dict:
    """``manifest``: the clean one changed by ``change(rows) -> (rows, what changed)``, the
    change kept in ``record``; both made once (a re-run reads them back)."""
    if not manifest.exists():
        rows, changed = change(read_jsonl(clean))
        write_jsonl(manifest, rows)
        record.write_text(json.dumps(changed), encoding="utf-8")
    return json.loads(record.read_text(encoding="utf-8"))


def read_csv(path: Path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def model_scores(checkpoint: Path, manifest: Path) -> tuple[object, list, dict, np.ndarray]:
    """The tagger, the manifest's records, their cached features and the tagger's scores."""
    from genre_tagger.checkpoint import load_checkpoint
    from genre_tagger.data.manifest import read_manifest
    from genre_tagger.runs import default_cache_dir

    bundle = load_checkpoint(checkpoint)
    records, _ = read_manifest(manifest)
    features = bundle.embed(records, default_cache_dir(None, manifest), progress=False)
    return bundle, records, features, bundle.scores(features)


def ranking_scores(rows: list[dict], kind: str, ids: list[str], labels: list[str], shape: tuple) -> np.ndarray:
    """``[n, L]``: a queue's order as scores (first row highest; pairs not in it -inf)."""
    index, column = {a: i for i, a in enumerate(ids)}, {g: j for j, g in enumerate(labels)}
    out = np.full(shape, -np.inf)
    ranked = [r for r in rows if r["issue"] == kind]
    for rank, row in enumerate(ranked):
        out[index[row["id"]], column[row["label"]]] = len(ranked) - rank
    return out


def top_k(scores: np.ndarray, candidates: np.ndarray, truth: np.ndarray, k: int, rows: np.ndarray | None = None) -> int:
    """Planted pairs among the ``k`` best-scored candidates (of the albums ``rows``, repeats allowed)."""
    rows = np.arange(len(scores)) if rows is None else rows
    s, t = scores[rows][candidates[rows]], truth[rows][candidates[rows]]
    return int(t[np.argsort(-s, kind="stable")[:k]].sum())


def queue_table(work: Path, noisy: Path, planted: dict[str, list], boots: int = 500) -> list[str]:
    """(a): precision / recall at K of the audit's queue, of its parts (without the genre tree's
    rule; the logistic heads alone), of the tagger's in-sample scores (alone and with the same
    tree rule) and of random order; paired bootstrap over albums of queue minus in-sample."""
    from genre_tagger.audit.catalog import load_inputs
    from genre_tagger.audit.review import log_odds, review_rows
    from genre_tagger.audit.run import out_of_fold_scores
    from genre_tagger.audit.tree import BONUS, parent_gaps

    inputs = load_inputs(work / "run" / "model.ckpt", noisy, progress=False)
    ids = [inputs.records[i].id for i in inputs.labelled]
    splits, labels, targets = list(inputs.splits()[inputs.labelled]), inputs.labels, inputs.targets
    in_sample = inputs.scores[inputs.labelled]
    oof = out_of_fold_scores(inputs, progress=False)
    tree = parent_gaps(targets, labels, oof.fold)
    queue = read_csv(work / "audit_noise" / "label_review.csv")
    variants = {"no_tree": review_rows(ids, labels, splits, oof.probabilities, targets, in_sample),
                "linear": review_rows(ids, labels, splits, oof.linear, targets, in_sample)}
    positive = targets > 0.5
    lines = ["| kind | planted | candidates | K | audit queue | without the tree rule | logistic heads alone "
             "| tagger in-sample | in-sample + tree rule | random | queue − in-sample (bootstrap sd) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rng = np.random.default_rng(0)
    for kind, candidates in (("missing", ~positive), ("unexpected", positive)):
        truth = np.zeros(targets.shape, bool)
        index, column = {a: i for i, a in enumerate(ids)}, {g: j for j, g in enumerate(labels)}
        for album, label in planted[kind]:
            if album in index and label in column:
                truth[index[album], column[label]] = True
        sign = 1.0 if kind == "missing" else -1.0
        ranked = {"queue": ranking_scores(queue, kind, ids, labels, targets.shape),
                  **{k: ranking_scores(v, kind, ids, labels, targets.shape) for k, v in variants.items()},
                  "in_sample": sign * log_odds(in_sample),
                  "in_sample_tree": sign * log_odds(in_sample) + (BONUS * tree[0] if kind == "missing" else 0.0)}
        n_true, n_cand = int(truth.sum()), int(candidates.sum())
        for k in (n_true, 2 * n_true):
            cells = []
            for name in ("queue", "no_tree", "linear", "in_sample", "in_sample_tree"):
                hits = top_k(ranked[name], candidates, truth, k)
                cells.append(f"{hits / k:.2f} / {hits / n_true:.2f}")
            cells.append(f"{n_true / n_cand:.3f} / {k / n_cand:.3f}")
            diffs = []
            for _ in range(boots):
                rows = rng.integers(0, len(ids), len(ids))
                diffs.append((top_k(ranked["queue"], candidates, truth, k, rows)
                              - top_k(ranked["in_sample"], candidates, truth, k, rows)) / k)
            gap = (top_k(ranked["queue"], candidates, truth, k) - top_k(ranked["in_sample"], candidates, truth, k)) / k
            cells.append(f"{gap:+.2f} ({np.std(diffs):.2f})")
            lines.append(f"| {kind} | {n_true} | {n_cand:,} | {k} | " + " | ".join(cells) + " |")
    sizes = {kind: sum(r["issue"] == kind for r in queue) for kind in ("missing", "unexpected")}
    lines += ["", f"Cells: precision / recall of the top K. Queue: {sizes['missing']} missing rows "
              f"({sum(bool(r.get('implied_by')) for r in queue)} from the genre tree's rule) and "
              f"{sizes['unexpected']} unexpected rows."]
    return lines


def per_album_change(bundle, features, targets: np.ndarray, rows: np.ndarray, modality: str) -> tuple:
    """``(delta AP [n], delta log-loss [n])`` of restoring ``modality`` to ``rows`` (positive = better)."""
    from sklearn.metrics import average_precision_score

    others = [m for m in bundle.modalities if m != modality]
    hidden = bundle.scores(features, modalities=others, rows=rows)
    restored = bundle.scores(features, rows=rows)
    y = targets[rows]

    def loss(s: np.ndarray) -> np.ndarray:
        s = np.clip(s.astype(np.float64), 1e-6, 1 - 1e-6)
        return -(y * np.log(s) + (1 - y) * np.log(1 - s)).sum(axis=1)

    ap = np.array([average_precision_score(y[i], restored[i]) - average_precision_score(y[i], hidden[i])
                   for i in range(len(rows))])
    return ap, loss(hidden) - loss(restored)


def restore_table(work: Path, clean: Path, hidden: dict[str, str]) -> list[str]:
    """(b): the hidden albums by fill gain; what restoring the modality does, top vs bottom quarter."""
    from scipy.stats import spearmanr

    from genre_tagger.data.modalities import get_modality
    from genre_tagger.labels import LabelVocabulary

    bundle, records, features, _ = model_scores(work / "run" / "model.ckpt", clean)
    targets, _ = LabelVocabulary(bundle.labels).encode(records)
    index = {r.id: i for i, r in enumerate(records)}
    fill = read_csv(work / "audit_hidden" / "fill_priorities.csv")
    gains = {(r["id"], r["modality"]): float(r["gain"]) for r in fill}
    lines = ["| hidden modality | albums | top quarter by gain: ΔAP / Δlog-loss | bottom quarter: ΔAP / Δlog-loss "
             "| all: ΔAP / Δlog-loss | Spearman(gain, Δlog-loss) | Spearman(gain, ΔAP) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    pooled = {"gain": [], "ap": [], "loss": []}
    for modality in bundle.modalities:
        ids = [album for album, m in hidden.items() if m == modality and album in index]
        rows = np.array([index[a] for a in ids], dtype=np.int64)
        if len(rows) < 8:
            continue
        ap, loss = per_album_change(bundle, features, targets, rows, modality)
        gain = np.array([gains[(a, modality)] for a in ids])
        pooled["gain"].append(gain), pooled["ap"].append(ap), pooled["loss"].append(loss)
        lines.append(_restore_line(get_modality(modality).word, gain, ap, loss, spearmanr))
    if pooled["gain"]:
        lines.append(_restore_line("all (one ranking)", *(np.concatenate(pooled[k]) for k in ("gain", "ap", "loss")),
                                   spearmanr))
    return lines


def _restore_line(name: str, gain: np.ndarray, ap: np.ndarray, loss: np.ndarray, spearmanr) -> str:
    order = np.argsort(-gain, kind="stable")
    quarter = max(len(order) // 4, 1)
    top, bottom = order[:quarter], order[-quarter:]
    return (f"| {name} | {len(gain)} | {ap[top].mean():+.3f} / {loss[top].mean():+.2f} | "
            f"{ap[bottom].mean():+.3f} / {loss[bottom].mean():+.2f} | {ap.mean():+.3f} / {loss.mean():+.2f} | "
            f"{spearmanr(gain, loss)[0]:.2f} | {spearmanr(gain, ap)[0]:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="/tmp/audit_bench")
    parser.add_argument("--generator", choices=("synthetic", "synthetic2"), default="synthetic",
                        help="catalog family: the demo's (synthetic) or the second one (synthetic2)")
    parser.add_argument("--albums", type=int, default=600)
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--track-seconds", type=float, default=3.0)
    parser.add_argument("--noise", type=float, default=0.1, help="share of albums losing a label (and gaining one)")
    parser.add_argument("--hide", type=float, default=0.3, help="share of the albums with a modality that hide it")
    parser.add_argument("--config", action="append", default=[], help="train config overlay (repeatable)")
    args = parser.parse_args()
    work = Path(args.workdir)
    # resolved: the embedding cache knows albums by their media's paths (a linked catalog folder hits it)
    clean = (work / "catalog").resolve() / "manifest.jsonl"
    timings = {}
    if not clean.exists():
        clock = time.monotonic()
        if args.generator == "synthetic2":
            from genre_tagger.data.synthetic2 import write_catalog2

            write_catalog2(work / "catalog", n_albums=args.albums, seed=args.seed, n_genres=args.labels,
                           track_seconds=args.track_seconds, label_noise=0.0, progress=False)
        else:
            from genre_tagger.data.synthetic import write_catalog

            write_catalog(work / "catalog", n_albums=args.albums, seed=args.seed, n_labels=args.labels,
                          track_seconds=args.track_seconds, label_noise=0.0, progress=False)
        timings["synth"] = time.monotonic() - clock
    noisy, planted_file = clean.parent / "noisy.jsonl", work / "planted.json"
    planted = derived_manifest(clean, noisy, planted_file, lambda rows: plant_noise(rows, args.noise, args.seed))
    if not (work / "run" / "model.ckpt").exists():
        config = [c for path in args.config for c in ("--config", path)]
        timings["train"] = cli("train", "--manifest", str(noisy), "--output", str(work / "run"), "--wandb", "disabled",
                               *config)
    if not (work / "audit_noise" / "summary.json").exists():
        timings["audit"] = cli("audit", "--checkpoint", str(work / "run" / "model.ckpt"), "--manifest", str(noisy),
                               "--output", str(work / "audit_noise"))
    hidden_manifest, hidden_file = clean.parent / "hidden.jsonl", work / "hidden.json"
    hidden = derived_manifest(clean, hidden_manifest, hidden_file, lambda rows: hide_modalities(rows, args.hide, args.seed))
    if not (work / "audit_hidden" / "summary.json").exists():
        timings["audit_hidden"] = cli("audit", "--checkpoint", str(work / "run" / "model.ckpt"), "--manifest",
                                      str(hidden_manifest), "--output", str(work / "audit_hidden"))
    writer = ("write_catalog2(n_albums={a}, seed={s}, n_genres={n}" if args.generator == "synthetic2" else
              "write_catalog(n_albums={a}, seed={s}, n_labels={n}").format(a=args.albums, s=args.seed, n=args.labels)
    lines = [f"Catalog: `{writer}, track_seconds={args.track_seconds:g}, label_noise=0)`; noise share {args.noise:g}, "
             f"hidden share {args.hide:g}; timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), "",
             "(a) Planted label errors: precision / recall of the top K", ""]
    lines += queue_table(work, noisy, planted)
    lines += ["", "(b) Hide and restore: what restoring the hidden modality changes, by fill-gain rank", ""]
    lines += restore_table(work, clean, hidden)
    text = "\n".join(lines) + "\n"
    (work / "results.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
