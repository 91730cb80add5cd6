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


def test_reviews_name_the_artists_signature_sound_and_nothing_else_changes(tmp_path):
    import numpy as np

    from genre_tagger.data.synthetic2 import sound

    assert [sound.level({"kind": "pulse", "rate": r}) for r in (1.2, 2.5, 4.5)] == [0, 1, 2]
    assert sound.level({"kind": "band", "centre": 1118.0}) == 1  # the middle of the log range
    words = sound.sound_sentences({"kind": "tremolo", "mod": 11.0}, 50.0, 0.0, np.random.default_rng(0))
    assert len(words) > 20 and set(words) == {"Hyc wybbel."}
    with_sound = read(write_catalog2(tmp_path / "on", n_albums=30, seed=1, n_genres=6, track_seconds=0.3,
                                     progress=False))
    without = read(write_catalog2(tmp_path / "off", n_albums=30, seed=1, n_genres=6, track_seconds=0.3,
                                  progress=False, sound_sentences=0))
    named = 0
    for on, off in zip(with_sound, without):
        assert {k: v for k, v in on.items() if k != "texts"} == {k: v for k, v in off.items() if k != "texts"}
        for text_on, text_off in zip(on["texts"] or [], off["texts"] or []):
            kept = [s for s in text_on.split(" ") if not any(w in s.lower() for w in sound.KIND_WORDS.values())
                    and s.rstrip(".").lower() not in sound.LEVEL_WORDS]
            assert " ".join(kept) == text_off  # the review around the sound sentences is unchanged
            named += text_on != text_off
    assert named > 5
    assert sorted(p.read_bytes() for p in (tmp_path / "on" / "covers").iterdir()) == \
        sorted(p.read_bytes() for p in (tmp_path / "off" / "covers").iterdir())


def test_genres_form_a_tree_within_clusters_and_albums_carry_their_ancestors(tmp_path):
    world = build_world(40, seed=0)
    depths = [len(world.ancestors(g)) for g in range(40)]
    assert max(depths) == 2 and depths.count(0) >= 2 and depths.count(1) >= 5 and depths.count(2) >= 3
    for child, parent in enumerate(world.parent):
        if parent is not None:
            assert parent < child and world.clusters[parent] == world.clusters[child]
    names = {g.name: i for i, g in enumerate(world.genres)}
    records = read(write_catalog2(tmp_path / "c", n_albums=60, seed=0, n_genres=40, track_seconds=0.2,
                                  progress=False))
    with_sub_genre = 0
    for record in records:
        genres = {names[name] for name in record["genres"]}
        assert set(world.close(genres)) == genres, record["id"]  # every ancestor is there
        with_sub_genre += any(world.parent[g] is not None for g in genres)
    assert with_sub_genre > 20


def test_taxonomy_auto_recovers_the_generators_tree(tmp_path):
    from genre_tagger.data.labelled import load_training_data
    from genre_tagger.taxonomy import MIN_SUPPORT, load_taxonomy_option

    manifest = write_catalog2(tmp_path / "c", n_albums=150, seed=3, n_genres=10, track_seconds=0.1, progress=False)
    data = load_training_data(manifest, None, 0)
    train = data.splits["train"]
    inferred = set(load_taxonomy_option("auto", data.vocabulary.names, data.targets[train]).links)
    world = build_world(10, seed=3)
    support = dict(zip(data.vocabulary.names, data.targets[train].sum(axis=0)))
    truth = {(c, p) for c, p in world.links() if support.get(c, 0) >= MIN_SUPPORT and p in support}
    assert len(truth) >= 4
    assert len(inferred & truth) >= 0.8 * len(truth)  # recall
    assert len(inferred & truth) >= 0.8 * len(inferred)  # precision
