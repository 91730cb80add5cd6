"""The genre taxonomy: parent links between labels, and what they imply for scores.

A ``Taxonomy`` holds ``child -> parents`` links over a label vocabulary (any depth; a child
may have several parents; no cycles). It answers ``parents``, ``ancestors`` and ``depth``,
and makes outputs consistent: ``constrain`` raises every ancestor's score to the max of its
descendants' (so no ancestor scores below a descendant), ``decide`` adds the ancestors of
every genre over its threshold, ``inconsistent`` finds albums whose predicted genres hold a
genre without one of its ancestors.

Files (``taxonomy.tsv``): one ``child<TAB>parent`` line per link; ``#`` comments and blank
lines allowed. ``read_taxonomy`` names the file and line of any malformed line, unknown
label or cycle. ``infer_taxonomy`` finds the links in training labels: a child whose albums
almost always carry the parent, with enough support, keeping only the nearest parent of a
chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from genre_tagger.errors import UserInputError

AUTO = "auto"
MIN_SUPPORT = 3  # albums carrying the child, for an inferred link
MIN_CONFIDENCE = 0.95  # share of the child's albums that carry the parent, for an inferred link
SECOND_PARENT_CHANCE = 1e-3  # a second parent must be this unlikely to be a coincidence


@dataclass
class Taxonomy:
    """``links``: ``(child, parent)`` pairs over ``labels`` (checked acyclic when made)."""

    labels: list[str]
    links: list[tuple[str, str]]
    _parents: dict[int, list[int]] = field(init=False, repr=False)
    _ancestors: dict[int, list[int]] = field(init=False, repr=False)
    _depths: list[int] = field(init=False, repr=False)
    _descendants: dict[int, list[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index = {name: i for i, name in enumerate(self.labels)}
        self.links = [(str(c), str(p)) for c, p in dict.fromkeys((c, p) for c, p in self.links)]
        self._parents = {i: [] for i in range(len(self.labels))}
        for child, parent in self.links:
            unknown = [name for name in (child, parent) if name not in index]
            if unknown or child == parent:
                raise ValueError(f"bad link {child!r} -> {parent!r}")
            self._parents[index[child]].append(index[parent])
        self._ancestors = {}
        for i in range(len(self.labels)):
            self._ancestors[i] = self._walk(i)
        self._depths = []
        for i in range(len(self.labels)):
            self._depths.append(self._depth(i))
        self._descendants = {}  # made once: constrain runs on every scored batch
        for child, ancestors in self._ancestors.items():
            for a in ancestors:
                self._descendants.setdefault(a, []).append(child)

    def _depth(self, i: int) -> int:
        parents = self._parents[i]
        return 0 if not parents else 1 + max(self._depth(p) for p in parents)

    def _walk(self, start: int) -> list[int]:
        seen: list[int] = []
        stack = list(self._parents[start])
        while stack:
            j = stack.pop(0)
            if j == start:
                raise ValueError(f"cycle through {self.labels[start]!r}")
            if j not in seen:
                seen.append(j)
                stack.extend(self._parents[j])
        return seen

    def __bool__(self) -> bool:
        return bool(self.links)

    def _at(self, label: str | int) -> int:
        return label if isinstance(label, (int, np.integer)) else self.labels.index(label)

    def parents(self, label: str | int) -> list[str]:
        return [self.labels[j] for j in self._parents[self._at(label)]]

    def ancestors(self, label: str | int) -> list[str]:
        """Every ancestor, nearest first."""
        return [self.labels[j] for j in self._ancestors[self._at(label)]]

    def ancestor_indices(self, label: int) -> list[int]:
        return list(self._ancestors[label])

    def depth(self, label: str | int) -> int:
        """0 for a label without parents; else 1 + the deepest parent's depth."""
        return self._depths[self._at(label)]

    def depths(self) -> np.ndarray:
        return np.array(self._depths, dtype=np.int64)

    def descendants(self) -> dict[int, list[int]]:
        """``{ancestor: [descendants]}`` for labels that have any."""
        return self._descendants

    def constrain(self, scores):
        """``scores [N, L]`` (numpy or torch) with every ancestor's score raised to the max of
        its descendants'; a new array, the input untouched."""
        out = scores.clone() if hasattr(scores, "clone") else np.array(scores, copy=True)
        if len(out) == 0:
            return out
        for ancestor, below in self.descendants().items():
            highest = scores[:, below].max(1)
            highest = highest.values if hasattr(highest, "values") else highest
            out[:, ancestor] = out[:, ancestor].maximum(highest) if hasattr(out, "clone") else np.maximum(
                out[:, ancestor], highest)
        return out

    def close(self, predicted: np.ndarray) -> np.ndarray:
        """Boolean ``[N, L]`` with every predicted label's ancestors added."""
        out = np.array(predicted, dtype=bool, copy=True)
        for child, ancestors in self._ancestors.items():
            if ancestors:
                out[:, ancestors] |= out[:, [child]]
        return out

    def decide(self, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """Boolean ``[N, L]``: the labels over their thresholds and all their ancestors."""
        return self.close(np.asarray(scores) >= np.asarray(thresholds)[None, :])

    def inconsistent(self, predicted: np.ndarray) -> np.ndarray:
        """Boolean ``[N]``: albums whose predicted labels include one without all its ancestors."""
        predicted = np.asarray(predicted, dtype=bool)
        return (self.close(predicted) != predicted).any(axis=1)

    def primary(self, labels: Iterable[int], scores: np.ndarray) -> int | None:
        """The most specific of ``labels`` (deepest; ties by score), or None."""
        labels = list(labels)
        if not labels:
            return None
        return max(labels, key=lambda j: (self.depth(j), float(scores[j]), -j))

    def order(self, labels: Iterable[int], scores: np.ndarray) -> list[int]:
        """``labels`` with parents before children: by depth, then by score (best first)."""
        return sorted(labels, key=lambda j: (self.depth(j), -float(scores[j]), j))

    def to_tsv(self) -> str:
        return "".join(f"{child}\t{parent}\n" for child, parent in self.links)

    def to_payload(self) -> list[list[str]]:
        """What a checkpoint stores: ``[[child, parent], ...]``."""
        return [[c, p] for c, p in self.links]

    @classmethod
    def from_payload(cls, labels: list[str], payload: object) -> "Taxonomy | None":
        """The stored form back (None: no taxonomy; a file without the key has none)."""
        if not payload:
            return None
        return cls(list(labels), [(str(c), str(p)) for c, p in payload])


def read_taxonomy(path: str | Path, labels: list[str]) -> Taxonomy:
    """Parse a ``child<TAB>parent`` file against ``labels``; ``UserInputError`` naming the file
    and line for a malformed line, a label the vocabulary does not have, a self link or a cycle."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserInputError(f"cannot read taxonomy {path}: {err}") from err
    known = set(labels)
    links: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in raw.rstrip("\r\n").split("\t")]
        if len(parts) != 2 or not all(parts):
            raise UserInputError(f"{path}:{number}: expected 'child<TAB>parent', got {raw!r}")
        child, parent = parts
        for name in (child, parent):
            if name not in known:
                raise UserInputError(f"{path}:{number}: unknown label {name!r} (not in the model's vocabulary)")
        if child == parent:
            raise UserInputError(f"{path}:{number}: {child!r} is its own parent")
        links.append((child, parent))
        if _reaches(links, parent, child):
            raise UserInputError(f"{path}:{number}: cycle: {parent!r} already descends from {child!r}")
    return Taxonomy(list(labels), links)


def _reaches(links: list[tuple[str, str]], start: str, goal: str) -> bool:
    """Whether ``goal`` is an ancestor of ``start`` (or ``start`` itself) through ``links``."""
    parents: dict[str, list[str]] = {}
    for c, p in links:
        parents.setdefault(c, []).append(p)
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(parents.get(node, []))
    return False


def infer_taxonomy(targets: np.ndarray, labels: list[str], min_support: int = MIN_SUPPORT,
                   min_confidence: float = MIN_CONFIDENCE) -> Taxonomy:
    """Links from labelled albums ``targets [N, L]``: ``child -> parent`` when at least
    ``min_support`` albums carry the child, at least ``min_confidence`` of them carry the
    parent, and the parent is the more frequent label (so two labels that always come
    together are not linked). Of a chain (child -> a -> b, child -> b) only the nearest
    parent is kept. A child with several such parents keeps the rarest, and each other one
    only when chance co-occurrence is unlikely (its base rate to the power of the child's
    support below ``SECOND_PARENT_CHANCE``): a popular genre that a handful of albums
    happen to carry is not a parent."""
    targets = np.asarray(targets, dtype=np.float64)
    support = targets.sum(axis=0)
    together = targets.T @ targets  # [L, L]: albums carrying both
    confidence = np.divide(together, support[:, None], out=np.zeros_like(together), where=support[:, None] > 0)
    implied = (confidence >= min_confidence) & (support[:, None] >= min_support) & (support[None, :] > support[:, None])
    np.fill_diagonal(implied, False)
    links = []
    for child in range(len(labels)):
        candidates = set(np.flatnonzero(implied[child]).tolist())
        # nearest only: drop a candidate implied by another candidate
        nearest = sorted((p for p in candidates if not any(implied[q, p] for q in candidates if q != p)),
                         key=lambda p: (support[p], p))
        base = support / max(len(targets), 1)
        keep = nearest[:1] + [p for p in nearest[1:] if base[p] ** support[child] < SECOND_PARENT_CHANCE]
        links.extend((labels[child], labels[p]) for p in sorted(keep))
    return Taxonomy(list(labels), links)


def load_taxonomy_option(option: str | Path | None, labels: list[str], targets: np.ndarray) -> Taxonomy | None:
    """``train --taxonomy``: None, a file (``read_taxonomy``) or ``auto`` (``infer_taxonomy``)."""
    if option is None:
        return None
    if str(option) == AUTO:
        return infer_taxonomy(targets, labels)
    return read_taxonomy(option, labels)
