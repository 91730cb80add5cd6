"""Artist-disjoint train/val/test splits for manifests that do not name them."""

from __future__ import annotations

import hashlib

from genre_tagger.data.records import AlbumRecord


def _group_rank(group: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(
    records: list[AlbumRecord], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> int:
    """Give every record whose ``split`` is None a split, keeping each artist in one split.

    Albums without an artist form a group of their own. Groups are ordered by a seeded
    hash (stable across runs and machines) and filled into train, val, test until each
    reaches its share of albums. An artist who already has a split keeps it. Returns the
    number of records assigned.
    """
    fixed = {r.artist: r.split for r in records if r.split and r.artist}
    groups: dict[str, list[AlbumRecord]] = {}
    for record in records:
        if record.split is None:
            groups.setdefault(record.artist or f"\0album:{record.id}", []).append(record)
    total = sum(len(members) for members in groups.values())
    targets = [fractions[0] * total, (fractions[0] + fractions[1]) * total]
    filled = 0
    for group in sorted(groups, key=lambda g: _group_rank(g, seed)):
        members = groups[group]
        split = fixed.get(group)
        if split is None:
            split = "train" if filled < targets[0] else "val" if filled < targets[1] else "test"
        for record in members:
            record.split = split
        filled += len(members)
    return total
