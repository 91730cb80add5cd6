"""The search vectors' two genre weights: chosen on constructed val data, used by the right
query direction, and read from older payloads that hold one."""

import numpy as np
import pytest
import torch

from genre_tagger.search.combine import GENRE_END, WEIGHTS, combine, metrics_at, query_weight
from genre_tagger.search.payload import genre_weights
from genre_tagger.search.weights import choose_genre_weights, log_rank_scores, one_se_choice


def _unit(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))


def _vectors(joint_noise: float | None, genre_noise: float, genre_in_joint: float = 0.0, seed: int = 0,
             n: int = 160, n_genres: int = 8, dim: int = 16) -> dict:
    """A val gallery of ``n`` albums in ``n_genres`` genres, each with a text query. Genre parts
    (album side and text side apart): the album's genre plus an album-specific profile, each
    side with its own noise (``genre_noise``). Joint parts: the album's own random vector, its
    query a noisy copy (``joint_noise``; None: the queries' joint parts are unrelated noise),
    plus ``genre_in_joint`` times a direction per genre."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(n_genres, size=n)
    profile = np.eye(n_genres)[genre] + 0.5 * rng.random((n, n_genres))
    album = rng.normal(size=(n, dim)) + genre_in_joint * rng.normal(size=(n_genres, dim))[genre]
    query = rng.normal(size=(n, dim)) if joint_noise is None else album + joint_noise * rng.normal(size=(n, dim))
    noisy = lambda: np.abs(profile + genre_noise * rng.normal(size=profile.shape))  # noqa: E731
    return {"gallery_joint": _unit(album), "gallery_genre": _unit(noisy()), "query_joint": _unit(query),
            "query_genre": _unit(noisy()), "queries": np.arange(n), "genres": [[f"g{g}"] for g in genre]}


def test_one_se_choice_takes_the_largest_weight_within_noise_of_the_best():
    rng = np.random.default_rng(0)
    base = rng.random(200)
    wobble = 0.05 * np.resize([1.0, -1.0], 200)  # paired noise, mean 0: sd 0.05, one SE 0.0035
    items = np.stack([base - 0.2, base, base - 0.002 + wobble, base - 0.3])  # weights 0, 1, 2, 3
    assert one_se_choice([0, 1, 2, 3], items) == 2  # 2 is level with 1 within noise, 3 is clearly worse
    assert one_se_choice([0, 1, 2, 3], np.zeros((4, 0))) == 3  # no evidence: the genre-score end
    assert one_se_choice([0, 1], np.stack([base + 0.1, base])) == 0  # clearly better: the smaller weight


def test_the_genre_score_end_is_chosen_when_the_joint_space_adds_nothing():
    vectors = _vectors(joint_noise=None, genre_noise=0.1)
    weights, tried = choose_genre_weights(vectors)
    assert weights.text == GENRE_END and weights.album == GENRE_END
    assert [t["weight"] for t in tried] == list(WEIGHTS)
    for seed in (1, 2, 3):  # noisier genre parts: never far from the genre-score end
        weights, _ = choose_genre_weights(_vectors(joint_noise=None, genre_noise=0.2, seed=seed))
        assert weights.text >= 5.0 and weights.album >= 5.0


def test_a_weight_below_the_genre_end_is_chosen_when_the_joint_space_helps():
    vectors = _vectors(joint_noise=1.5, genre_noise=0.2)
    weights, tried = choose_genre_weights(vectors)
    assert 0 < weights.text < 5.0  # both parts count for text queries
    by_weight = {t["weight"]: t for t in tried}
    assert by_weight[weights.text]["val_rank_score"] > by_weight[GENRE_END]["val_rank_score"] + 0.2
    assert by_weight[weights.text]["val_rank_score"] > by_weight[0.0]["val_rank_score"] + 0.1
    # a joint space that also holds the genres, beside noisy genre scores: album-to-album too
    weights, tried = choose_genre_weights(_vectors(joint_noise=1.5, genre_noise=0.6, genre_in_joint=2.0))
    by_weight = {t["weight"]: t for t in tried}
    assert weights.album < 5.0
    assert by_weight[weights.album]["val_precision_at_10"] > by_weight[GENRE_END]["val_precision_at_10"] + 0.05


def test_a_shuffled_joint_space_falls_back_to_the_genre_end():
    vectors = _vectors(joint_noise=1.5, genre_noise=0.1)
    order = np.random.default_rng(1).permutation(len(vectors["queries"]))
    vectors["query_joint"] = vectors["query_joint"][order]  # queries' joint parts no longer their albums'
    weights, _ = choose_genre_weights(vectors)
    assert weights.text >= 5.0


def test_text_queries_rank_by_the_text_weight_whatever_the_album_weight():
    vectors = _vectors(joint_noise=1.5, genre_noise=0.2)
    for album, text in ((2.0, 0.5), (0.5, 3.0), (GENRE_END, 1.5), (10.0, GENRE_END)):
        gallery = combine(vectors["gallery_joint"], vectors["gallery_genre"], album)
        queries = combine(vectors["query_joint"], vectors["query_genre"], query_weight(album, text))
        wanted = vectors["query_joint"] @ vectors["gallery_joint"].T + text ** 2 * (
            vectors["query_genre"] @ vectors["gallery_genre"].T)
        scale = 1 / np.sqrt((1 + album ** 2) * (1 + query_weight(album, text) ** 2))  # one positive scale
        assert torch.allclose(queries @ gallery.T, (wanted * scale).float(), atol=1e-5)
        assert metrics_at(vectors, album, text)["text_to_album_recall_at_10"] == pytest.approx(
            metrics_at(vectors, text)["text_to_album_recall_at_10"], abs=1e-9)
    assert query_weight(0.0, 0.0) == 0.0 and query_weight(1.5, None) == 1.5
    with pytest.raises(ValueError):
        query_weight(0.0, 1.0)


def test_payload_weights_old_and_new():
    assert genre_weights({"genre_weight": 1.5}) == (1.5, 1.5)  # one weight for both, as stored before
    assert genre_weights({}) == (0.0, 0.0)
    assert genre_weights({"genre_weight": 10.0, "text_genre_weight": 1.5}) == (10.0, 1.5)


def test_the_text_weight_counts_every_rank_not_only_hits_at_1_5_10():
    scores = log_rank_scores(np.array([1, 3, 11, 40, 100]), 100)
    assert scores[0] == 1.0 and scores[-1] == pytest.approx(0.0)
    assert np.all(np.diff(scores) < 0)  # a move from rank 11 to 3 counts, though 11 is no hit at 10
    assert log_rank_scores(np.array([1]), 1).tolist() == [1.0]
