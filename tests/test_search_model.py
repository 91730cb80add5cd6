"""Joint space, contrastive loss, §7 protocol and descriptions on hand-made data (no files)."""

import math

import numpy as np
import pytest
import torch

from genre_tagger.data.records import AlbumRecord
from genre_tagger.search.descriptions import TemplateDescriptions
from genre_tagger.search.features import DescriptionEmbeddings
from genre_tagger.search.fit import JointData, JointSettings, fit_joint_space, genre_matrix, validate
from genre_tagger.search.joint import JointSpace, genre_cross_entropy, info_nce
from genre_tagger.search.protocol import own_ranks, precision_at_k, search_metrics


def test_info_nce_known_value_and_alignment():
    eye = torch.eye(2)
    # Orthonormal matched pairs: logits [[s, 0], [0, s]] -> each row's CE is log(1 + e^-s).
    assert float(info_nce(eye, eye, 10.0)) == pytest.approx(math.log(1 + math.exp(-10.0)), rel=1e-3)
    rng = torch.Generator().manual_seed(0)
    first = torch.nn.functional.normalize(torch.randn(16, 8, generator=rng), dim=1)
    aligned = info_nce(first, first, 14.0)
    shuffled = info_nce(first, first[torch.randperm(16, generator=rng)], 14.0)
    assert aligned < shuffled
    assert float(info_nce(first, first.flip(0), 14.0)) == pytest.approx(float(info_nce(first.flip(0), first, 14.0)))


def test_soft_targets_spare_related_albums_and_reduce_to_info_nce_without_relations():
    eye = torch.eye(3)
    close = torch.nn.functional.normalize(torch.tensor([[1.0, 0.6, 0], [0.6, 1.0, 0], [0, 0, 1.0]]), dim=1)
    none = torch.zeros(3, 3)
    assert float(info_nce(close, eye, 10.0, none, 0.5)) == pytest.approx(float(info_nce(close, eye, 10.0)), rel=1e-5)
    # Albums 0 and 1 share genres: plain InfoNCE prefers them apart (orthogonal), the soft
    # target prefers them close.
    related = torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 1]])
    assert float(info_nce(close, eye, 10.0)) > float(info_nce(eye, eye, 10.0))
    assert float(info_nce(close, eye, 10.0, related, 0.5)) < float(info_nce(eye, eye, 10.0, related, 0.5))


def test_genre_cross_entropy_spreads_the_target_over_an_albums_genres():
    targets = torch.tensor([[1.0, 1, 0, 0], [0, 0, 0, 0]])  # the second album has no genres: left out
    logits = torch.zeros(2, 4)
    assert float(genre_cross_entropy(logits, targets)) == pytest.approx(math.log(4))
    right = torch.tensor([[5.0, 5, -5, -5], [9, 9, 9, 9]])
    assert float(genre_cross_entropy(right, targets)) == pytest.approx(math.log(2), abs=1e-3)  # its minimum
    assert float(genre_cross_entropy(logits, torch.zeros(2, 4))) == 0.0
    out = genre_matrix([["b", "a"], None, ["c"], ["a"]], np.array([0, 3]))  # vocabulary from rows 0, 3: a, b
    assert out.tolist() == [[1, 1], [0, 0], [0, 0], [1, 0]]


def test_album_fusion_masks_missing_modalities_and_nothing_known():
    space = JointSpace({"audio": 4, "image": 3, "text": 5}, dim=6, hidden=8).eval()
    audio, image = torch.randn(3, 4), torch.randn(3, 3)
    present = {"audio": torch.tensor([True, False, False]), "image": torch.tensor([True, True, False])}
    vectors, known = space.album({"audio": audio, "image": image}, present)
    assert known.tolist() == [True, True, False]
    assert torch.allclose(vectors[1], space.project("image", image[1:2])[0], atol=1e-6)  # image only
    assert torch.all(vectors[2] == 0)  # nothing known matches nothing
    assert torch.allclose(vectors[:2].norm(dim=1), torch.ones(2), atol=1e-5)
    both = torch.nn.functional.normalize(space.project("audio", audio[:1]) + space.project("image", image[:1]), dim=1)
    assert torch.allclose(vectors[0], both[0], atol=1e-6)


def test_protocol_on_a_hand_built_case_with_known_ranks():
    gallery = np.array([[1, 0], [0, 1], [-1, 0], [0.8, 0.6]], dtype=np.float32)
    queries = np.array([[1, 0], [0.6, 0.8], [0, -1]], dtype=np.float32)
    # q0: album 0 is nearest -> rank 1. q1 scores 0.6, 0.8, -0.6, 0.96: its album 1 is behind
    # album 3 -> rank 2. q2 scores 0, -1, 0, -0.6: its album 1 is last -> rank 4.
    owner = np.array([0, 1, 1])
    assert own_ranks(queries, owner, gallery).tolist() == [1, 2, 4]
    genres = [["Rock"], ["Jazz"], ["Rock", "Pop"], None]
    # Neighbours (k clipped to 3 with 4 albums) share a genre: album 0 -> {3, 1, 2}: only 2 shares -> 1/3;
    # album 1 -> {3, 0, 2}: none -> 0; album 2 -> {1, 3, 0}: album 0 -> 1/3; album 3 has no genres.
    assert precision_at_k(gallery, genres, 10) == pytest.approx((1 / 3 + 0 + 1 / 3) / 3)
    metrics = search_metrics(queries, owner, gallery, genres)
    assert metrics["text_to_album_recall_at_1"] == pytest.approx(1 / 3)
    assert metrics["text_to_album_recall_at_5"] == 1.0
    assert metrics["text_to_album_median_rank"] == 2.0
    assert (metrics["n_queries"], metrics["n_albums"]) == (3, 4)


def test_precision_uses_the_ten_nearest_other_albums():
    angles = np.array([0.0] + [0.1 * i for i in range(1, 12)])  # album 11 is the 11th nearest to album 0
    gallery = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    genres = [["A"]] + [None] * 10 + [["A"]]
    # album 0: its 10 nearest are 1..10, none with genres -> 0; album 11: nearest are 10..1 -> 0.
    assert precision_at_k(gallery, genres, 10) == 0.0
    genres[10] = ["A"]  # albums 0 and 11 have album 10 among their 10 nearest; album 10 has 11 but not 0
    assert precision_at_k(gallery, genres, 10) == pytest.approx(0.1)
    genres[1] = ["B"]  # a neighbour with another genre does not share
    assert precision_at_k(gallery, genres, 10) == pytest.approx(0.3 / 4)
    assert np.isnan(precision_at_k(gallery[:1], genres[:1], 10))  # a lone album has no neighbour


def test_template_descriptions_are_deterministic_and_need_something_musical():
    source = TemplateDescriptions(per_album=3, seed=1)
    record = AlbumRecord(id="a1", genres=["Jazz", "Soul"], artist="Ann", extra={"title": "Blue", "tags": ["mellow"]})
    texts = source.describe(record)
    assert texts == source.describe(record) and len(texts) == 3
    assert all(("Jazz" in t or "Soul" in t) and "mellow" in t for t in texts)
    assert source.describe(AlbumRecord(id="a2", artist="Ann", extra={"title": "Blue"})) == []


def _latent_catalog(n=240, seed=0, shuffle_train_text=False):
    """Albums with a latent taste z: audio, cover and text are noisy linear views of it."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 6))
    view = lambda dim: z @ rng.normal(size=(6, dim)) + 0.3 * rng.normal(size=(n, dim))  # noqa: E731
    audio, image, text = view(12), view(10), view(16)
    splits = {"train": np.arange(0, 160), "val": np.arange(160, 200), "test": np.arange(200, n)}
    if shuffle_train_text:  # train and val pairs broken (selection on val must not rescue them)
        seen = np.arange(0, 200)
        text[seen] = text[rng.permutation(seen)]
    present = lambda p: rng.random(n) > p  # noqa: E731
    text_present = present(0.1)
    return JointData({"audio": audio, "image": image}, {"audio": present(0.1) | ~text_present, "image": present(0.2)},
                     text, text_present, DescriptionEmbeddings.empty(16), [["x"]] * n, splits)


@pytest.mark.parametrize("shuffled,hidden", [(False, 0), (True, 0), (False, 32), (True, 32)])
def test_joint_space_learns_text_to_album_and_shuffled_pairs_do_not(shuffled, hidden):
    torch.set_num_threads(1)
    data = _latent_catalog(shuffle_train_text=shuffled)
    settings = JointSettings(dim=16, hidden=hidden, text_sources=["own"], max_epochs=40, patience=40, batch_size=32)
    space, _ = fit_joint_space(data, settings, progress=False)
    assert_learns_unless_shuffled(validate(space, data, data.splits["test"]), shuffled)


def assert_learns_unless_shuffled(metrics: dict, shuffled: bool) -> None:
    """Test recall@5 well above chance when trained on true pairs, near chance on shuffled ones."""
    chance = 5 / metrics["n_albums"]
    if shuffled:
        assert metrics["text_to_album_recall_at_5"] < chance + 0.15
    else:
        assert metrics["text_to_album_recall_at_5"] > chance + 0.4


def test_audio_cover_only_and_generated_only_spaces_train():
    torch.set_num_threads(1)
    data = _latent_catalog()
    rows = data.splits["train"]
    descriptions = DescriptionEmbeddings(data.text[rows] + 0.1, rows)  # one "description" per train album
    data = JointData(data.album, data.album_present, data.text, data.text_present, descriptions, data.genres,
                     data.splits)
    for sources in ([], ["generated"]):
        settings = JointSettings(dim=8, hidden=16, text_sources=sources, max_epochs=3, batch_size=32)
        space, report = fit_joint_space(data, settings, progress=False)
        assert report["epochs"] == 3 and report["train_pairs"] > 100
        assert set(space.modalities) == {"audio", "image", "text"}


def test_stems_are_frozen_copies_in_front_of_the_projections():
    torch.set_num_threads(1)
    data = _latent_catalog()
    dims = {"audio": 12, "image": 10, "text": 16}
    stems = {m: torch.nn.Sequential(torch.nn.LayerNorm(d), torch.nn.Linear(d, 8), torch.nn.GELU()) for m, d in dims.items()}
    settings = JointSettings(dim=8, hidden=16, text_sources=["own"], max_epochs=2, batch_size=32, stems=True)
    space, _ = fit_joint_space(data, settings, progress=False, stems=stems)
    assert space.stem_width == 8
    for m in dims:  # copied, and training left them as they were
        assert torch.equal(space.stems[m][1].weight, stems[m][1].weight)
    x = torch.randn(3, 12)
    expected = torch.nn.functional.normalize(space.projections["audio"](stems["audio"](x)), dim=-1)
    assert torch.allclose(space.project("audio", x), expected, atol=1e-6)
    plain, _ = fit_joint_space(data, JointSettings(**{**settings.__dict__, "stems": False}), progress=False, stems=stems)
    assert plain.stems is None


def test_combined_vectors_stay_unit_and_mix_the_two_cosines():
    from genre_tagger.search.combine import combine

    rng = torch.Generator().manual_seed(0)
    unit = lambda *shape: torch.nn.functional.normalize(torch.randn(*shape, generator=rng), dim=-1)  # noqa: E731
    joint, genre = unit(5, 8), unit(5, 4)
    for w in (0.0, 0.5, 2.0):
        v = combine(joint, genre, w)
        assert v.shape == (5, 12) and torch.allclose(v.norm(dim=1), torch.ones(5), atol=1e-6)
        expected = (joint @ joint.T + w ** 2 * genre @ genre.T) / (1 + w ** 2)
        assert torch.allclose(v @ v.T, expected, atol=1e-6)


def test_text_view_columns_bypass_the_stem_and_the_tagger_reads_only_its_own():
    from genre_tagger.search.text_view import tagger_inputs

    space = JointSpace({"audio": 4, "text": 5}, dim=6, hidden=8, stem_width=3, text_view_dim=7).eval()
    dense, view = torch.randn(2, 5), torch.rand(2, 7)
    expected = torch.nn.functional.normalize(
        space.projections["text"](torch.cat([space.stems["text"](dense), view], dim=1)), dim=-1)
    assert torch.allclose(space.text(torch.cat([dense, view], dim=1)), expected, atol=1e-6)
    assert space.projections["text"][1].in_features == 3 + 7 and space.projections["audio"][1].in_features == 3

    class Tagger(torch.nn.Module):
        projections = torch.nn.ModuleDict({"text": torch.nn.Sequential(torch.nn.LayerNorm(5))})

    cut = tagger_inputs(Tagger(), {"text": torch.cat([dense, view], dim=1), "audio": torch.randn(2, 4)})
    assert torch.equal(cut["text"], dense) and cut["audio"].shape == (2, 4)


def test_linear_projections_when_hidden_is_zero():
    space = JointSpace({"audio": 4, "text": 5}, dim=6, hidden=0, dropout=0.2)
    linear = [m for m in space.projections["text"] if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 1 and (linear[0].in_features, linear[0].out_features) == (5, 6)
    assert space.text(torch.randn(3, 5)).shape == (3, 6)


def test_a_word_view_is_fitted_beside_a_tagger_view_and_survives_its_payload():
    from types import SimpleNamespace

    from genre_tagger.data.text import HashingTokenizer
    from genre_tagger.models.encoders.sparse_text import SparseTextView
    from genre_tagger.search.text_view import load_view, view_payload, wanted

    # the tagger's own sparse view reaches the joint space only through a genre-trained stem
    tagger_with_view = SimpleNamespace(modalities=["audio", "text"])
    assert wanted(tagger_with_view, {"max_features": 64}) and not wanted(tagger_with_view, None)
    assert not wanted(SimpleNamespace(modalities=["audio"]), {"max_features": 64})

    tokenizer = HashingTokenizer(vocab_size=512)
    ids = [torch.tensor(tokenizer.encode_chunks(t, 16, 4)[0]) for t in
           ("breakneck fuzzed-out drums", "slow clean piano", "breakneck clean drums")]
    width = max(len(i) for i in ids)
    batch = {"input_ids": torch.stack([torch.nn.functional.pad(i, (0, width - len(i))) for i in ids]).unsqueeze(1),
             "attention_mask": torch.stack([torch.arange(width) < len(i) for i in ids]).unsqueeze(1),
             "chunk_mask": torch.ones(3, 1, dtype=torch.bool), "present": torch.ones(3, dtype=torch.bool)}
    view = SparseTextView(vocab_size=512, max_features=32, min_df=2, units="words", tokenizer=tokenizer)
    view.fit([batch])
    again = load_view(view_payload(view))
    assert again.units == "words" and torch.allclose(again(batch), view(batch))
    assert (view(batch)[[0, 2]] > 0).sum(dim=1).min() >= 1   # "breakneck" / "clean" / "drums" are terms


def test_standardised_inputs_are_fitted_on_the_present_training_albums():
    from genre_tagger.search.joint import Standardize

    data = _latent_catalog()
    data.album["audio"][~data.album_present["audio"]] = 0.0  # missing rows carry zeros, as in the cache
    space, _ = fit_joint_space(data, JointSettings(dim=8, text_sources=["own"], max_epochs=1), progress=False)
    first = space.projections["audio"][0]
    assert isinstance(first, Standardize) and isinstance(space.projections["text"][0], torch.nn.LayerNorm)
    train = data.splits["train"][data.album_present["audio"][data.splits["train"]]]
    assert np.allclose(first.mean.numpy(), data.album["audio"][train].mean(axis=0), atol=1e-5)
    x = torch.from_numpy(data.album["audio"][train].astype(np.float32))
    assert torch.allclose(first(x).std(dim=0), torch.ones(12), atol=1e-4)
    # saved with the space: a space rebuilt from its state standardises alike
    again = JointSpace({"audio": 12, "image": 10, "text": 16}, dim=8, hidden=0, input_norm="standardize")
    again.load_state_dict(space.state_dict())
    assert torch.allclose(again.projections["audio"][0](x), first(x))


def test_the_text_side_can_read_the_view_alone():
    space = JointSpace({"audio": 4, "text": 5}, dim=6, hidden=0, text_view_dim=7, text_inputs="view").eval()
    dense, view = torch.randn(2, 5), torch.rand(2, 7)
    assert space.projections["text"][2].in_features == 7
    assert torch.allclose(space.text(torch.cat([dense, view], dim=1)), space.text(torch.cat([dense * 0, view], dim=1)))
    assert JointSpace({"audio": 4, "text": 5}, text_inputs="view").text_inputs == "both"  # no view: the encoder's
    with pytest.raises(ValueError, match="text_inputs"):
        JointSpace({"audio": 4}, text_inputs="words")


def test_paired_rank_sign_test_counts_and_p_value():
    from genre_tagger.search.protocol import paired_rank_sign_test

    out = paired_rank_sign_test(np.array([1, 2, 3, 4, 9]), np.array([2, 3, 4, 5, 9]))
    assert out == {"better": 4, "worse": 0, "tied": 1, "p_value": 0.125}  # 2 * (1/2)^4
    assert paired_rank_sign_test(np.array([1, 5]), np.array([5, 1]))["p_value"] == 1.0
    with pytest.raises(ValueError):
        paired_rank_sign_test(np.array([1]), np.array([1, 2]))
