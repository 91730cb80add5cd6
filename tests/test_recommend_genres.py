"""The tagger's genre scores as album content: the genre taste ranks albums by the
listener's genre profile, the scores come from the chosen modalities only, and a model
reading them finds cold-start albums (no training play) far above chance."""

import numpy as np
import torch

from genre_tagger.bundle import TaggerBundle
from genre_tagger.config import deep_merge
from genre_tagger.recommend.catalog import add_genre_scores, model_inputs
from genre_tagger.recommend.evaluation import model_scorer
from genre_tagger.recommend.fitting import load_recommend_config, train_one
from genre_tagger.recommend.interactions import Interactions
from genre_tagger.recommend.model import GENRES, PAD, AlbumEncoder, GenreTaste, HistoryEncoder, NextAlbumModel
from genre_tagger.recommend.splits import leave_last_out

from test_recommend_model import tiny_world


def test_genre_taste_ranks_albums_by_the_history_profile():
    genres = torch.eye(4)[[0, 0, 1, 2, 3]]                     # albums 0, 1: genre 0; 2: 1; 3: 2; 4: 3
    albums = AlbumEncoder({GENRES: 4}, n_ids=0, width=8)
    model = NextAlbumModel(albums, HistoryEncoder(width=8, layers=1, max_len=4), GenreTaste(4, decay=0.5))
    sequences = torch.tensor([[PAD, 0, 2]])                    # genre 0, then genre 1 (most recent)
    logits = model.genre_logits(sequences, genres)[0, -1]      # after the last play
    assert logits[2] > logits[0] == logits[1] > logits[3] == logits[4] == 0  # recent genre first, unseen last
    model.taste.label_weight.data[1] = 0.0                     # a label that says nothing about taste
    assert model.genre_logits(sequences, genres)[0, -1, 2] == 0


def test_genre_scores_come_from_the_chosen_modalities_only():
    class Tagger(torch.nn.Module):  # stands in for GenreTagger: logits = sum of the present inputs
        modalities = ["audio", "text"]
        head = torch.nn.Sequential(torch.nn.Linear(1, 3))

        def eval(self):
            return self

        training = False

        def logits_from_embeddings(self, embeddings, present):
            return sum(e * p[:, None] for e, p in zip(embeddings.values(), present.values()))

    tagger = TaggerBundle(Tagger(), {}, ["a", "b", "c"], np.full(3, 0.5), {})
    content = {"audio": np.ones((2, 3), np.float32), "text": 2 * np.ones((2, 3), np.float32)}
    present = {"audio": np.array([True, False]), "text": np.array([True, True])}
    both, known = add_genre_scores(tagger, content, present, ["audio", "text"])
    audio, audio_known = add_genre_scores(tagger, content, present, ["audio"])
    assert np.allclose(both[GENRES][0], 1 / (1 + np.exp(-3.0))) and np.allclose(both[GENRES][1], 1 / (1 + np.exp(-2.0)))
    assert np.allclose(audio[GENRES][0], 1 / (1 + np.exp(-1.0))) and known[GENRES].all()
    assert audio_known[GENRES].tolist() == [True, False]      # album 1 has no audio: nothing known from it
    assert model_inputs(["audio"], {"genre_scores": True, "embeddings": True}) == ["audio", GENRES]
    assert model_inputs(["audio"], {"genre_scores": True, "embeddings": False}) == [GENRES]
    assert model_inputs([], {"genre_scores": True, "embeddings": True}) == []     # id only


def cold_ranks(genre_scores: np.ndarray, albums, split) -> np.ndarray:
    """Rank of each cold-start test target among the cold albums not in its history."""
    ids = [a.id for a in albums]
    config = deep_merge(load_recommend_config(["recommend/tiny"]), {
        "trainer": {"max_epochs": 18, "patience": 18}, "model": {"genre_scores": True, "embeddings": False}})
    features, present = {GENRES: genre_scores}, {GENRES: np.ones(len(ids), bool)}
    bundle, _ = train_one(Interactions(ids, None, split), features, present, ["text"], config, [], progress=False)
    scores = model_scorer(bundle, ids, features, present)(split.test_inputs())
    cold = ~split.seen_in_training(len(ids))
    ranks = []
    for row, history, target in zip(scores, split.test_inputs(), split.test_target):
        if cold[target]:
            candidates = cold.copy()
            candidates[history] = False
            ranks.append(1 + int((row[candidates] > row[target]).sum()))
    return np.array(ranks)


def test_a_model_on_genre_scores_ranks_cold_albums_by_them(one_torch_thread):
    albums, _, histories = tiny_world()
    split = leave_last_out(histories, {a.id: i for i, a in enumerate(albums)})
    names = sorted({g for a in albums for g in a.genres})
    rng = np.random.default_rng(1)
    scores = np.array([[0.8 if g in a.genres else 0.1 for g in names] for a in albums], np.float32)
    scores = np.clip(scores + 0.1 * rng.normal(size=scores.shape), 0.01, 0.99).astype(np.float32)  # a tagger's
    real, shuffled = cold_ranks(scores, albums, split), cold_ranks(scores[rng.permutation(len(scores))], albums, split)
    n_cold = int((~split.seen_in_training(len(albums))).sum())
    # new releases are few (12 here) and a third of the targets: every model ranks them high
    # (the calibrated offset); which one the listener picks, only content can tell
    assert len(real) >= 20 and real.mean() < 0.65 * (n_cold + 1) / 2, (real.mean(), n_cold)
    assert shuffled.mean() > real.mean() + 1.5, (shuffled.mean(), real.mean())
