"""Does `train --taxonomy auto` recover the synthetic generator's own genre tree?

The links inferred from a catalog's training albums (``genre_tagger.taxonomy.infer_taxonomy``,
exactly what `train --taxonomy auto` runs) against the generator's ``child -> parent`` map,
over the labels the training albums use. Only the albums' plans are made (labels and splits,
no media), so it takes seconds::

    python benchmarks/taxonomy.py --albums 600 --labels 50 250 --seed 0
    python benchmarks/taxonomy.py --generator synthetic2 --albums 1200 --labels 40 250 --seed 0

(the second generator family's tree: ``genre_tagger.data.synthetic2.world``, cluster top
genre -> genre -> sub-genre).

Precision: the share of inferred links that are the generator's; recall: the share of the
generator's links (both labels in use) that were inferred, overall and over children with at
least ``MIN_SUPPORT`` training albums (fewer can never be inferred).

With ``--checkpoint CKPT --manifest M`` (a model trained with a taxonomy), also what the tree
changes on the test split, from the same scores with and without the constraint: macro
ROC-AUC, the share of albums with a genre but not its parent, and the metrics per level::

    python benchmarks/taxonomy.py --labels --checkpoint RUN/model.ckpt --manifest M
"""

from __future__ import annotations

import argparse

import numpy as np

from genre_tagger.data.synthetic.planning import plan_catalog
from genre_tagger.data.synthetic.vocabulary import build_vocabulary
from genre_tagger.data.synthetic2.catalog import MISSING, plan_albums2
from genre_tagger.data.synthetic2.world import build_world
from genre_tagger.labels import LabelVocabulary
from genre_tagger.taxonomy import MIN_SUPPORT, infer_taxonomy


def measure(n_albums: int, n_labels: int, seed: int, generator: str = "synthetic") -> dict:
    if generator == "synthetic2":
        world = build_world(n_labels, seed)
        plans2 = plan_albums2(world, n_albums, seed, MISSING, LABEL_NOISE)
        albums = [[world.genres[g].name for g in p.shown] for p in plans2 if p.split == "train"]
        tree = world.links()
    else:
        albums = [p.genres for p in plan_catalog(n_albums, seed, n_labels=n_labels) if p.split == "train" and p.genres]
        tree = [(c, p) for c, p in build_vocabulary(n_labels).parent.items() if p is not None]
    names = sorted({g for genres in albums for g in genres})
    vocabulary = LabelVocabulary(names)
    index = {name: i for i, name in enumerate(names)}
    targets = np.zeros((len(albums), len(names)))
    for row, genres in enumerate(albums):
        targets[row, [index[g] for g in genres]] = 1
    inferred = set(infer_taxonomy(targets, vocabulary.names).links)
    truth = {(c, p) for c, p in tree if c in index and p in index}
    support = targets.sum(axis=0)
    learnable = {(c, p) for c, p in truth if support[index[c]] >= MIN_SUPPORT}
    hits = len(inferred & truth)
    return {"labels": n_labels, "albums": len(albums), "links": len(truth), "inferred": len(inferred), "hits": hits,
            "precision": hits / max(len(inferred), 1), "recall": hits / max(len(truth), 1),
            "recall_learnable": len(inferred & learnable) / max(len(learnable), 1), "learnable": len(learnable)}


def what_the_tree_changes(checkpoint: str, manifest: str, split: str = "test") -> list[str]:
    """Markdown lines: the model's test scores with and without its taxonomy's constraint."""
    from genre_tagger.checkpoint import load_checkpoint
    from genre_tagger.data.labelled import load_training_data
    from genre_tagger.metrics import compute_metrics, taxonomy_metrics
    from genre_tagger.prediction import unconstrained
    from genre_tagger.runs import default_cache_dir

    bundle = load_checkpoint(checkpoint)
    if bundle.taxonomy is None:
        raise SystemExit(f"{checkpoint} has no taxonomy (train it with --taxonomy)")
    data = load_training_data(manifest, None, bundle.config.get("seed", 0))
    rows = data.splits[split]
    records = [data.records[i] for i in rows]
    targets, _ = LabelVocabulary(bundle.labels).encode(records)
    features = bundle.embed(records, default_cache_dir(bundle.config["data"].get("cache_dir"), manifest), progress=False)
    constrained = bundle.scores(features)
    with unconstrained(bundle.model):
        raw = bundle.scores(features)
    tree = taxonomy_metrics(targets, constrained, raw, bundle.thresholds, bundle.taxonomy)
    auc = {name: compute_metrics(targets, s, bundle.thresholds)["macro_roc_auc"] for name, s in
           (("raw", raw), ("tree", constrained))}
    n = len(records)
    return [f"{n} {split} albums, {len(bundle.taxonomy.links)} links: macro ROC-AUC {auc['raw']:.4f} raw, "
            f"{auc['tree']:.4f} with the tree; albums with a genre but not its parent "
            f"{round(tree['inconsistent_albums_unconstrained'] * n)} raw, {round(tree['inconsistent_albums'] * n)} "
            f"with the tree; hierarchical F1 {tree['hierarchical_f1']:.3f}; macro ROC-AUC by level "
            + ", ".join(f"{level}: {value:.3f}" if value == value else f"{level}: n/a (no label of that level evaluable)"
                 for level, value in tree["macro_roc_auc_by_level"].items())]


LABEL_NOISE = 0.05  # write_catalog2's default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--albums", type=int, default=600)
    parser.add_argument("--labels", type=int, nargs="*", default=[50, 250])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator", choices=("synthetic", "synthetic2"), default="synthetic")
    parser.add_argument("--checkpoint", default=None, help="a model trained with --taxonomy")
    parser.add_argument("--manifest", default=None, help="its labelled manifest")
    args = parser.parse_args()
    if args.checkpoint:
        print("\n".join(what_the_tree_changes(args.checkpoint, args.manifest)))
    if not args.labels:
        return 0
    print("| labels | training albums | generator links | inferred | precision | recall | recall (children with "
          f">= {MIN_SUPPORT} albums) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n_labels in args.labels:
        r = measure(args.albums, n_labels, args.seed, args.generator)
        print(f"| {r['labels']} | {r['albums']} | {r['links']} | {r['inferred']} | {r['precision']:.2f} "
              f"({r['hits']}/{r['inferred']}) | {r['recall']:.2f} ({r['hits']}/{r['links']}) | "
              f"{r['recall_learnable']:.2f} (of {r['learnable']}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
