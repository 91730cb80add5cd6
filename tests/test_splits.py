"""assign_splits: artist-disjoint train/val/test splits for manifests that name none."""

from collections import Counter, defaultdict

from genre_tagger.data.records import AlbumRecord
from genre_tagger.data.splits import assign_splits


def _catalog(n_artists: int = 60, seed: int = 0) -> list[AlbumRecord]:
    """Artists with 1-6 albums each, plus albums without an artist."""
    records = []
    for a in range(n_artists):
        for k in range(1 + (a * 7 + seed) % 6):
            records.append(AlbumRecord(id=f"ar{a}-al{k}", artist=f"artist {a}"))
    records += [AlbumRecord(id=f"solo{i}") for i in range(20)]
    return records


def _artist_splits(records: list[AlbumRecord]) -> dict[str, set[str]]:
    splits = defaultdict(set)
    for record in records:
        if record.artist:
            splits[record.artist].add(record.split)
    return splits


def test_no_artist_is_in_two_splits_and_shares_are_near_the_fractions():
    records = _catalog()
    assert assign_splits(records, seed=3) == len(records)
    assert all(len(splits) == 1 for splits in _artist_splits(records).values())
    counts = Counter(r.split for r in records)
    assert set(counts) == {"train", "val", "test"}
    # Whole artists (at most 6 albums) are placed, so a share misses its target by less than one artist.
    for split, share in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert abs(counts[split] - share * len(records)) <= 6, (split, counts)


def test_same_seed_same_splits_and_another_seed_differs():
    first, again, other = _catalog(), _catalog(), _catalog()
    assign_splits(first, seed=1)
    assign_splits(again, seed=1)
    assign_splits(other, seed=2)
    assert [r.split for r in first] == [r.split for r in again]
    assert [r.split for r in first] != [r.split for r in other]


def test_given_splits_are_kept_and_their_artists_follow_them():
    records = _catalog()
    records[0].split = "test"  # artist 0 already has an album in test
    fixed_ids = {r.id for r in records if r.split}
    assigned = assign_splits(records, seed=0)
    assert assigned == len(records) - len(fixed_ids)
    assert records[0].split == "test"
    assert {r.split for r in records if r.artist == records[0].artist} == {"test"}
    assert all(len(splits) == 1 for splits in _artist_splits(records).values())


def test_albums_without_an_artist_are_spread_one_by_one():
    records = [AlbumRecord(id=f"solo{i}") for i in range(200)]
    assign_splits(records, seed=0)
    counts = Counter(r.split for r in records)
    assert counts["train"] in range(155, 166) and counts["val"] in range(15, 26) and counts["test"] >= 15
