"""Joint space, contrastive loss, the search protocol and descriptions on hand-made data (no files)."""

import math

import numpy as np
import pytest
import torch

from genre_tagger.data.records import AlbumRecord
from genre_tagger.search.descriptions import TemplateDescriptions
from genre_tagger.search.data import DescriptionEmbeddings, JointData
from genre_tagger.search.fit import JointSettings, fit_joint_space, validate
from genre_tagger.search.joint import JointSpace, info_nce
from genre_tagger.search.protocol import own_ranks, precision_at_k, search_metrics

# InfoNCE from a random start, as configs/search/audio_cover.yaml trains it.
CONTRASTIVE = dict(method="contrastive", fusion="mean", text_norm="layer")


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


def test_album_fusion_masks_missing_modalities_and_nothing_known():
    space = JointSpace({"audio": 4, "image": 3}, text_dim=5, dim=6, fusion="mean").eval()
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


@pytest.mark.parametrize("shuffled", [False, True])
def test_joint_space_learns_text_to_album_and_shuffled_pairs_do_not(shuffled):
    torch.set_num_threads(1)
    data = _latent_catalog(shuffle_train_text=shuffled)
    settings = JointSettings(**CONTRASTIVE, dim=16, text_sources=["own"], max_epochs=40, patience=40, batch_size=32)
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
        settings = JointSettings(**CONTRASTIVE, dim=8, text_sources=sources, max_epochs=3, batch_size=32)
        space, report = fit_joint_space(data, settings, progress=False)
        assert report["epochs"] == 3 and report["train_pairs"] > 100
        assert space.album_modalities == ["audio", "image"] and space.text_dim == 16


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


def test_the_text_view_is_the_text_sides_own_input_and_widths_are_stated():
    space = JointSpace({"audio": 4, "image": 3}, text_dim=7, dim=6, text_norm="layer").eval()
    assert (space.album_dims, space.text_dim, space.dim) == ({"audio": 4, "image": 3}, 7, 6)
    assert space.design_width == 4 + 3 + 2 and space.album_modalities == ["audio", "image"]
    view = torch.rand(2, 7)
    expected = torch.nn.functional.normalize(space.text_map(space.text_scaling(view)), dim=-1)
    assert torch.allclose(space.text(view), expected, atol=1e-6) and space.text(view).shape == (2, 6)
    # an album's own texts join its album side through the same map
    audio = torch.randn(2, 4)
    vectors, known = space.album({"audio": audio}, {"audio": torch.tensor([False, True])}, view,
                                 torch.tensor([True, True]))
    assert known.all() and torch.allclose(vectors[0], space.text(view)[0], atol=1e-6)
    with pytest.raises(ValueError, match="text_norm"):
        JointSpace({"audio": 4}, text_dim=5, text_norm="words")


def test_a_word_view_survives_its_payload_and_is_rebuilt_from_its_spec():
    from genre_tagger.data.text import HashingTokenizer
    from genre_tagger.models.encoders.sparse_text import SparseTextView
    from genre_tagger.search.text_view import CLASS_PATH, load_view, view_args, view_payload

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
    assert again.spec() == {"class_path": CLASS_PATH, "init_args": view_args(view)}  # what the cache knows it by
    assert (view(batch)[[0, 2]] > 0).sum(dim=1).min() >= 1   # "breakneck" / "clean" / "drums" are terms


def test_standardised_inputs_are_fitted_on_the_present_training_albums():
    from genre_tagger.search.joint import Standardize

    data = _latent_catalog()
    data.album["audio"][~data.album_present["audio"]] = 0.0  # missing rows carry zeros, as in the cache
    settings = JointSettings(**CONTRASTIVE, dim=8, text_sources=["own"], max_epochs=1)
    space, _ = fit_joint_space(data, settings, progress=False)
    first = space.scaling["audio"]
    assert isinstance(first, Standardize) and isinstance(space.text_scaling, torch.nn.LayerNorm)
    train = data.splits["train"][data.album_present["audio"][data.splits["train"]]]
    assert np.allclose(first.mean.numpy(), data.album["audio"][train].mean(axis=0), atol=1e-5)
    x = torch.from_numpy(data.album["audio"][train].astype(np.float32))
    assert torch.allclose(first(x).std(dim=0), torch.ones(12), atol=1e-4)
    # saved with the space: a space rebuilt from its state standardises alike
    again = JointSpace({"audio": 12, "image": 10}, 16, **space.init_args)
    again.load_state_dict(space.state_dict())
    assert torch.allclose(again.scaling["audio"](x), first(x))


def test_the_code_defaults_are_the_shipped_yaml():
    from dataclasses import asdict
    from inspect import signature

    from genre_tagger.config import read_yaml

    shipped = read_yaml("search/joint.yaml")["search"]["fit"]
    assert asdict(JointSettings.from_config(shipped)) == asdict(JointSettings())
    defaults = {k: p.default for k, p in signature(JointSpace).parameters.items() if p.default is not p.empty}
    assert defaults == JointSettings().space_args()


def test_removed_settings_are_dropped_when_off_and_refused_otherwise():
    settings = JointSettings.from_config({"hidden": 0, "stems": False, "genre_loss": 0.0, "dim": 16}, seed=3)
    assert (settings.dim, settings.seed) == (16, 3)
    for change in ({"hidden": 512}, {"soft_targets": 0.1}, {"input_norm": "layer"}, {"no_such_thing": 1}):
        with pytest.raises(ValueError, match=next(iter(change))):
            JointSettings.from_config(change)


def _format_1_state(space: JointSpace) -> dict:
    """``space``'s state under format 1's names (``projections.<m>.<0: input scaling | 2: map>``)."""
    state = {}
    for key, value in space.state_dict().items():
        module, _, rest = key.partition(".")
        if module in ("scaling", "album_maps"):
            m, _, param = rest.partition(".")
            key = f"projections.{m}.{0 if module == 'scaling' else 2}.{param}"
        elif module in ("text_scaling", "text_map"):
            key = f"projections.text.{0 if module == 'text_scaling' else 2}.{rest}"
        state[key] = value
    return state


def test_a_format_1_payload_is_upgraded_with_its_old_defaults_and_gives_the_same_vectors():
    from genre_tagger.search.payload import load_space, space_digest
    from genre_tagger.upgrade import TAGGER_FORMAT, upgrade_payload

    space = JointSpace({"audio": 4, "image": 3}, text_dim=6, dim=5, dropout=0.1, fusion="mean", text_norm="layer")
    with torch.no_grad():
        for p in space.parameters():
            p.add_(torch.randn_like(p))
    space.fit_input_scaling({"audio": torch.randn(20, 4) * 2 + 1, "image": torch.randn(20, 3)})
    space.eval()
    # fusion, text_norm and dropout left out: format 1 read them as its defaults of the time
    old = {"format": "genre_tagger.joint_space/1", "input_dims": {"audio": 4, "image": 3, "text": 9},
           "init": {"dim": 5, "hidden": 0, "input_norm": "standardize", "text_inputs": "view", "text_view_dim": 6},
           "state_dict": _format_1_state(space), "genre_weight": 0.5}

    def loaded(joint: dict) -> dict:  # a 0.1.0 tagger checkpoint holding ``joint``, as it loads today
        file = {"format": f"{TAGGER_FORMAT}/1", "config": {}, "state_dict": {}, "extra": {"joint_space": joint}}
        return upgrade_payload(file, TAGGER_FORMAT, "old.ckpt", "a checkpoint")["extra"]

    new = loaded(old)["joint_space"]
    assert new["album_dims"] == {"audio": 4, "image": 3} and new["text_dim"] == 6
    assert (new["init"]["fusion"], new["init"]["text_norm"], new["init"]["dropout"]) == ("mean", "layer", 0.1)
    assert space_digest(new) == space_digest(old)  # index folders made with it still match
    again = load_space(new)
    emb = {"audio": torch.randn(3, 4), "image": torch.randn(3, 3)}
    present = {"audio": torch.tensor([1, 0, 1]).bool(), "image": torch.tensor([1, 1, 0]).bool()}
    view = torch.rand(3, 6)
    assert torch.allclose(again.album(emb, present)[0], space.album(emb, present)[0], atol=1e-6)
    assert torch.allclose(again.text(view), space.text(view), atol=1e-6)
    for change in ({"hidden": 512}, {"input_norm": "layer"}, {"text_inputs": "both"}):
        extra = loaded({**old, "init": {**old["init"], **change}})
        assert "joint_space" not in extra and next(iter(change)) in extra["joint_space_unreadable"]


def test_paired_rank_sign_test_counts_and_p_value():
    from genre_tagger.search.protocol import paired_rank_sign_test

    out = paired_rank_sign_test(np.array([1, 2, 3, 4, 9]), np.array([2, 3, 4, 5, 9]))
    assert out == {"better": 4, "worse": 0, "tied": 1, "p_value": 0.125}  # 2 * (1/2)^4
    assert paired_rank_sign_test(np.array([1, 5]), np.array([5, 1]))["p_value"] == 1.0
    with pytest.raises(ValueError):
        paired_rank_sign_test(np.array([1]), np.array([1, 2]))
