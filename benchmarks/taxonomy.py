"""Does `train --taxonomy auto` recover the synthetic generator's own genre tree?

The links inferred from a catalog's training albums (``genre_tagger.taxonomy.infer_taxonomy``,
exactly what `train --taxonomy auto` runs) against the generator's ``child -> parent`` map,
over the labels the training albums use. Only the albums' plans are made (labels and splits,
no media), so it takes seconds::

    python benchmarks/taxonomy.py --albums 600 --labels 50 250 --seed 0

Precision: the share of inferred links that are the generator's; recall: the share of the
generator's links (both labels in use) that were inferred, overall and over children with at
least ``MIN_SUPPORT`` training albums (fewer can never be inferred).
"""

from __future__ import annotations

import argparse

import numpy as np

from genre_tagger.data.synthetic.planning import plan_catalog
from genre_tagger.data.synthetic.vocabulary import build_vocabulary
from genre_tagger.labels import LabelVocabulary
from genre_tagger.taxonomy import MIN_SUPPORT, infer_taxonomy


def measure(n_albums: int, n_labels: int, seed: int) -> dict:
    plans = [p for p in plan_catalog(n_albums, seed, n_labels=n_labels) if p.split == "train" and p.genres]
    names = sorted({g for p in plans for g in p.genres})
    vocabulary = LabelVocabulary(names)
    index = {name: i for i, name in enumerate(names)}
    targets = np.zeros((len(plans), len(names)))
    for row, plan in enumerate(plans):
        targets[row, [index[g] for g in plan.genres]] = 1
    inferred = set(infer_taxonomy(targets, vocabulary.names).links)
    parents = build_vocabulary(n_labels).parent
    truth = {(c, p) for c, p in parents.items() if p is not None and c in index and p in index}
    support = targets.sum(axis=0)
    learnable = {(c, p) for c, p in truth if support[index[c]] >= MIN_SUPPORT}
    hits = len(inferred & truth)
    return {"labels": n_labels, "albums": len(plans), "links": len(truth), "inferred": len(inferred), "hits": hits,
            "precision": hits / max(len(inferred), 1), "recall": hits / max(len(truth), 1),
            "recall_learnable": len(inferred & learnable) / max(len(learnable), 1), "learnable": len(learnable)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--albums", type=int, default=600)
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 250])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| labels | training albums | generator links | inferred | precision | recall | recall (children with "
          f">= {MIN_SUPPORT} albums) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n_labels in args.labels:
        r = measure(args.albums, n_labels, args.seed)
        print(f"| {r['labels']} | {r['albums']} | {r['links']} | {r['inferred']} | {r['precision']:.2f} "
              f"({r['hits']}/{r['inferred']}) | {r['recall']:.2f} ({r['hits']}/{r['links']}) | "
              f"{r['recall_learnable']:.2f} (of {r['learnable']}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
