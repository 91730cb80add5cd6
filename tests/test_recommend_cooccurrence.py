"""The co-occurrence start of the id embeddings, the recency-weighted taste path of the
history encoder and the id weights by play count: small hand-built cases."""

import numpy as np
import torch

from genre_tagger.recommend.cooccurrence import cooccurrence_vectors, cosine_cooccurrence
from genre_tagger.recommend.model import PAD, AlbumEncoder, HistoryEncoder, pad_right_aligned


def test_cosine_cooccurrence_counts_users_not_plays():
    sim = cosine_cooccurrence([[0, 1, 1], [0, 1], [2]], n_items=4).toarray()
    assert sim.shape == (4, 4) and np.allclose(np.diag(sim), 0.0)
    assert np.isclose(sim[0, 1], 1.0) and np.isclose(sim[1, 0], 1.0)     # always together
    assert sim[0, 2] == 0.0 and sim[:, 3].sum() == 0.0                    # never together / never played


def test_cooccurrence_vectors_put_albums_played_together_close():
    rng = np.random.default_rng(0)
    # two groups of albums (0-4, 5-9); every user plays inside one group only
    sequences = [list(rng.choice(np.arange(5) + 5 * (u % 2), size=3, replace=False)) for u in range(60)]
    vectors = cooccurrence_vectors(sequences, np.arange(10), dim=4, scale=0.5)
    assert vectors.shape == (10, 4) and vectors.dtype == np.float32
    assert np.isclose(np.linalg.norm(vectors, axis=1).mean(), 0.5 * 2.0, rtol=1e-4)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit.T
    within, across = cosine[:5, :5][~np.eye(5, dtype=bool)].mean(), cosine[:5, 5:].mean()
    assert within > 0.8 and across < 0.2, (within, across)


def test_cooccurrence_vectors_of_a_subset_and_an_isolated_album():
    vectors = cooccurrence_vectors([[0, 1], [0, 1], [3]], np.array([0, 1, 3]), dim=8, scale=0.1)
    assert vectors.shape == (3, 8) and np.allclose(vectors[2], 0.0) and np.isfinite(vectors).all()


def test_recency_mean_weights_recent_plays_and_skips_padding():
    encoder = HistoryEncoder(width=2, layers=1, max_len=4, taste=True, taste_decay=0.5)
    items = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    padding = pad_right_aligned([[7, 8]], length=3) == PAD          # first slot is padding
    mean = encoder.recency_mean(items, padding)[0]
    assert torch.allclose(mean[1], torch.tensor([1.0, 0.0]))         # only itself (padding skipped)
    # the last slot: weights 0.5 (one play ago) and 1 (itself), normalised
    assert torch.allclose(mean[2], torch.tensor([0.5 / 1.5, 1.0 / 1.5]), atol=1e-6)


def test_rarely_played_albums_lean_on_content():
    albums = AlbumEncoder({"text": 3}, n_ids=3, width=4, id_shrink=5.0)
    albums.set_play_counts(torch.tensor([0, 5, 95]))
    assert torch.allclose(albums.id_weight, torch.tensor([1.0, 0.0, 0.5, 0.95]))
    off = AlbumEncoder({"text": 3}, n_ids=3, width=4)           # id_shrink 0: every id counts fully
    off.set_play_counts(torch.tensor([0, 5, 95]))
    assert torch.equal(off.id_weight, torch.ones(4))


def test_checkpoints_from_before_the_taste_path_still_load(tmp_path):
    """A model saved without the taste path and the id weights, in format version 1 (with
    ``optim.content_loss``), loads with the config it was saved with, upgraded."""
    from genre_tagger.config import deep_merge
    from genre_tagger.recommend.store import RecommenderBundle, build_model, load_recommender, save_recommender
    from genre_tagger.recommend.fitting import load_recommend_config

    config = deep_merge(load_recommend_config(["recommend/tiny"]), {"model": {"history": {"init_args": {"taste": False}}}})
    model = build_model(config, {}, n_ids=4)
    path = tmp_path / "old.ckpt"
    save_recommender(path, RecommenderBundle(model, config, [], {}, ["a", "b", "c", "d"], None))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "genre_tagger.recommender/2"
    del payload["state_dict"]["albums.id_weight"]
    payload["format"] = "genre_tagger.recommender/1"
    payload["config"]["optim"]["content_loss"] = 0.0
    torch.save(payload, path)
    loaded = load_recommender(path)
    assert not loaded.model.history.taste and torch.equal(loaded.model.albums.id_weight, torch.ones(5))
    assert "content_loss" not in loaded.config["optim"]
