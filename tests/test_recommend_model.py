"""The recommender model: cold albums are scored from content; it learns real histories
(beats popularity by a margin) and not shuffled ones. Tiny data, content made directly
from the albums' genres (no tagger needed), one torch thread: seconds per test."""

import random

import numpy as np
import pytest
import torch

from genre_tagger.config import deep_merge
from genre_tagger.data.synthetic.listeners import ListenerAlbum, generate_events
from genre_tagger.recommend.baselines import Popularity
from genre_tagger.recommend.catalog import album_table
from genre_tagger.recommend.evaluation import model_scorer
from genre_tagger.recommend.fitting import load_recommend_config, train_one
from genre_tagger.recommend.interactions import Interactions
from genre_tagger.recommend.metrics import evaluate_scorer
from genre_tagger.recommend.model import AlbumEncoder, HistoryEncoder, NextAlbumModel
from genre_tagger.recommend.splits import leave_last_out

FAMILIES = {f"F{k}": [f"F{k}/s{j}" for j in range(4)] for k in range(6)}


def top_of(genre: str) -> str:
    return genre.split("/")[0]


def tiny_world(n_albums=150, n_users=300, seed=0):
    """Albums in 6 families x 4 sub-genres; content = a noisy random projection of the genres."""
    rng = np.random.default_rng(seed)
    genres = [g for family, subs in FAMILIES.items() for g in [family, *subs]]
    albums, onehot = [], np.zeros((n_albums, len(genres)), np.float32)
    for i in range(n_albums):
        family = f"F{rng.integers(6)}"
        subs = list(rng.choice(FAMILIES[family], size=int(rng.integers(1, 3)), replace=False))
        albums.append(ListenerAlbum(f"al{i}", [family, *subs], artist=f"ar{i // 2}"))
        onehot[i, [genres.index(g) for g in [family, *subs]]] = 1.0
    content = onehot @ rng.normal(size=(len(genres), 24)).astype(np.float32)
    content += 0.5 * rng.normal(size=content.shape).astype(np.float32)
    histories = {}
    for event in generate_events(albums, n_users, seed, top_of):
        histories.setdefault(event["user"], []).append(event["album"])
    return albums, content, histories


def fit_and_score(histories, albums, content, train_histories=None):
    ids = [a.id for a in albums]
    index = {a: i for i, a in enumerate(ids)}
    split = leave_last_out(histories, index)
    config = deep_merge(load_recommend_config(["recommend/tiny"]), {
        "trainer": {"max_epochs": 18, "patience": 18},
        "model": {"genre_scores": False, "embeddings": True}})  # the embedding path (genre scores: test_recommend_genres)
    train_data = Interactions(ids, None, leave_last_out(train_histories or histories, index))
    features, present = {"text": content}, {"text": np.ones(len(ids), bool)}
    bundle, _ = train_one(train_data, features, present, ["text"], config, [], progress=False)
    cold = ~split.seen_in_training(len(ids))[split.test_target]
    args = (split.test_inputs(), split.test_target, cold)
    model = evaluate_scorer(model_scorer(bundle, ids, features, present), *args)
    popularity = evaluate_scorer(Popularity(len(ids)).fit(split.training_sequences()), *args)
    return model, popularity


@pytest.fixture(scope="module")
def world():
    return tiny_world()


def test_the_model_learns_histories_and_not_shuffled_ones(world, one_torch_thread):
    albums, content, histories = world
    model, popularity = fit_and_score(histories, albums, content)
    assert model["hit_rate_at_10"] > popularity["hit_rate_at_10"] + 0.05, (model, popularity)
    # cold-start targets (no training play): found from content, far above chance (~10/150)
    assert model["n_cold_start"] >= 20 and model["cold_start_hit_rate_at_10"] > 0.15, model

    # the same plays with each user's albums drawn at random from everybody's: no taste left to learn
    rng = random.Random(0)
    pool = [album for history in histories.values() for album in history]
    shuffled = {user: rng.sample(pool, len(history)) for user, history in histories.items()}
    shuffled_model, _ = fit_and_score(histories, albums, content, train_histories=shuffled)
    assert shuffled_model["hit_rate_at_10"] < model["hit_rate_at_10"] - 0.05, (shuffled_model, model)
    assert shuffled_model["hit_rate_at_10"] < popularity["hit_rate_at_10"] + 0.04


def test_cold_albums_are_scored_from_content():
    torch.manual_seed(0)
    albums = AlbumEncoder({"audio": 8, "text": 6}, n_ids=3, width=16, id_dropout=0.0, modality_dropout=0.0)
    model = NextAlbumModel(albums, HistoryEncoder(width=16, layers=1, max_len=5)).eval()
    content = {"audio": np.random.default_rng(0).normal(size=(5, 8)), "text": np.random.default_rng(1).normal(size=(5, 6))}
    present = {"audio": np.array([1, 1, 1, 1, 0], bool), "text": np.array([1, 1, 1, 0, 0], bool)}
    ids = [f"a{i}" for i in range(5)]
    table = album_table(ids, content, present, id_vocabulary=["a0", "a1", "a2"])   # a3, a4: cold
    assert table.id_index.tolist() == [1, 2, 3, 0, 0]
    scores = model.score([[0, 1], [2]], table)
    assert scores.shape == (2, 5) and torch.isfinite(scores).all()
    # a cold album's score follows its content (it has no id to fall back on) ...
    content["audio"][3] = np.random.default_rng(2).normal(size=8)
    moved = model.score([[0, 1], [2]], album_table(ids, content, present, ["a0", "a1", "a2"]))
    assert not torch.allclose(moved[:, 3], scores[:, 3]) and torch.allclose(moved[:, :3], scores[:, :3])
    # ... and an album with no content and no id still gets a finite score (the "no content" token)
    assert torch.isfinite(scores[:, 4]).all()


def test_class_defaults_are_the_shipped_config():
    """configs/recommend/default.yaml is the one statement of the defaults: every init_arg it
    sets (and optim's) is also the class's own default."""
    import inspect

    from genre_tagger.config import import_object, read_yaml
    from genre_tagger.recommend.lit_module import RecommenderModule

    config = read_yaml("recommend/default")
    parts = [config["model"][name] for name in ("albums", "history", "taste")]
    pairs = [(import_object(part["class_path"]), part["init_args"]) for part in parts]
    for cls, settings in [*pairs, (RecommenderModule, config["optim"])]:
        defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
        assert {k: defaults.get(k) for k in settings} == settings, cls.__name__


def test_modality_dropout_keeps_one_input_of_each_album():
    """In training, dropping every input of an album would leave only the "no content" token:
    ``drop_modalities`` keeps one, so no album with content looks like one without."""
    torch.manual_seed(0)
    albums = AlbumEncoder({"audio": 4, "text": 3}, n_ids=0, width=8, modality_dropout=0.99).train()
    n = 64
    content = {"audio": torch.randn(n, 4), "text": torch.randn(n, 3)}
    present = {"audio": torch.ones(n, dtype=torch.bool), "text": torch.ones(n, dtype=torch.bool)}
    present["audio"][-1] = present["text"][-1] = False                   # the last album has nothing
    table = album_table([f"a{i}" for i in range(n)], content, present, [])
    vectors = albums.content_vectors(table)
    nothing = vectors[-1]
    assert not torch.isclose(vectors[:-1], nothing, atol=1e-5).all(dim=1).any()
