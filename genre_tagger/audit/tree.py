"""The genre tree's rule for the label review: a genre absent while one of its sub-genres is present.

A structural rule, not a fitted model: the tree (``genre_tagger.taxonomy.infer_taxonomy``: a
child whose albums almost always carry the parent) is inferred, for each fold, from the
*other* folds' labels only, then applied to the fold's albums: an album that carries a
child but not its ancestor is a ``missing`` candidate for the ancestor. The album's own
labels of other genres are the rule's input (that is what the rule reads); no album's
labels decide the links that judge it. The link's own confidence, ``MIN_CONFIDENCE``
(its carriers of the child carry the parent at least that often), enters the review score as
log-odds evidence (``BONUS``); on the audit benchmark (benchmarks/RESULTS.md) it moved more
planted missing labels into the top of the queue than the heads' scores alone.
"""

from __future__ import annotations

import math

import numpy as np

from genre_tagger.taxonomy import MIN_CONFIDENCE, infer_taxonomy

BONUS = math.log(MIN_CONFIDENCE / (1 - MIN_CONFIDENCE))


def parent_gaps(targets: np.ndarray, labels: list[str], fold: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
    """``(gap [n, L] bool, implied_by)``: album ``i`` lacks label ``j`` while carrying a
    descendant of ``j`` in the tree inferred without ``i``'s fold; ``implied_by[i*L + j]``
    names those descendants (empty where no gap)."""
    present = np.asarray(targets) > 0.5
    n, n_labels = present.shape
    implied: list[list[str]] = [[] for _ in range(n * n_labels)]
    gap = np.zeros_like(present)
    for k in np.unique(fold):
        inside = np.flatnonzero(fold == k)
        tree = infer_taxonomy(np.asarray(targets)[fold != k], labels)
        for child in range(n_labels):
            for ancestor in tree.ancestor_indices(child):
                for i in inside[present[inside, child] & ~present[inside, ancestor]]:
                    gap[i, ancestor] = True
                    implied[i * n_labels + ancestor].append(labels[child])
    return gap, implied
