"""The second generator family: deterministic, artist-disjoint, evidence in some modalities only."""

import json

from genre_tagger.data.synthetic2 import write_catalog2
from genre_tagger.data.synthetic2.world import build_world


def read(manifest):
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def test_deterministic_artist_disjoint_and_missing(tmp_path):
    a = write_catalog2(tmp_path / "a", n_albums=40, seed=2, n_genres=8, track_seconds=0.5, progress=False)
    b = write_catalog2(tmp_path / "b", n_albums=40, seed=2, n_genres=8, track_seconds=0.5, progress=False)
    assert a.read_text() == b.read_text()
    assert (a.parent / "audio").iterdir() and sorted(p.read_bytes() for p in (a.parent / "covers").iterdir()) == \
        sorted(p.read_bytes() for p in (b.parent / "covers").iterdir())
    records = read(a)
    splits_of = {}
    for record in records:
        splits_of.setdefault(record["artist"], set()).add(record["split"])
        assert record["genres"] and any(record[f] for f in ("audio", "cover", "texts"))
    assert all(len(s) == 1 for s in splits_of.values())
    assert any(r["texts"] is None for r in records) and any(r["cover"] is None for r in records)


def test_genres_speak_through_some_modalities_only():
    world = build_world(40, seed=0)
    shares = [len(g.modalities) for g in world.genres]
    assert min(shares) >= 1 and sum(s < 3 for s in shares) > 10
    assert len({k for g in world.genres for k in g.keywords}) == 3 * 40
