"""The closed-form joint space (regularised CCA) on hand-made data (no files)."""

import numpy as np
import pytest
import torch

from genre_tagger.search.cca import canonical_maps
from genre_tagger.search.data import DescriptionEmbeddings, JointData
from genre_tagger.search.fit import JointSettings, fit_joint_space, validate
from genre_tagger.search.joint import JointSpace
from test_search_model import assert_learns_unless_shuffled


def _direct_cca(x, y, rx, ry, k):
    """Textbook regularised CCA through D x D matrices (small D only): correlations [k]."""
    x, y = x - x.mean(0), y - y.mean(0)
    n = len(x)
    cxx, cyy, cxy = x.T @ x / n, y.T @ y / n, x.T @ y / n
    inv_sqrt = lambda c, r: (lambda e, q: (q / np.sqrt(e + r)) @ q.T)(*np.linalg.eigh(c))  # noqa: E731
    wx = inv_sqrt(cxx, rx * np.trace(cxx) / len(cxx))
    wy = inv_sqrt(cyy, ry * np.trace(cyy) / len(cyy))
    return np.linalg.svd(wx @ cxy @ wy, compute_uv=False)[:k]


@pytest.mark.parametrize("solver", ["svd", "covariance"])
def test_canonical_maps_match_the_textbook_form_and_find_the_shared_signal(solver):
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(300, 2))
    x = np.hstack([shared @ rng.normal(size=(2, 6)), rng.normal(size=(300, 4))]) + 0.3 * rng.normal(size=(300, 10))
    y = np.hstack([shared @ rng.normal(size=(2, 5)), rng.normal(size=(300, 7))]) + 0.3 * rng.normal(size=(300, 12))
    maps = list(canonical_maps(x, y, [0.1, 1.0], [0.3], [2, 50], solver=solver))
    assert [(m.album_ridge, m.dim) for m in maps] == [(0.1, 2), (0.1, 10), (1.0, 2), (1.0, 10)]  # dims cut to rank
    for m in maps:
        assert np.allclose(m.correlations, _direct_cca(x, y, m.album_ridge, 0.3, m.dim), atol=1e-8)
    wide = maps[1]
    assert wide.correlations[1] > 0.8 and wide.correlations[2] < 0.5  # two shared directions, then noise
    a, t = wide.album(x), wide.text(y)
    assert np.corrcoef(a[:, 0], t[:, 0])[0, 1] > 0.9
    with pytest.raises(ValueError, match="paired"):
        next(canonical_maps(x[:5], y[:4], [1.0], [1.0], [2]))


def test_both_solvers_give_the_same_similarities():
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(80, 3))
    x = shared @ rng.normal(size=(3, 6)) + 0.5 * rng.normal(size=(80, 6))
    y = np.abs(shared @ rng.normal(size=(3, 9)) + 0.5 * rng.normal(size=(80, 9))) * (rng.random((80, 9)) < 0.4)
    by = {s: next(canonical_maps(x, y, [0.5], [2.0], [4], solver=s)) for s in ("svd", "covariance")}
    assert np.allclose(by["svd"].correlations, by["covariance"].correlations, atol=1e-8)
    sims = {s: m.album(x) @ m.text(y).T for s, m in by.items()}  # sign flips cancel between the sides
    assert np.allclose(sims["svd"], sims["covariance"], atol=1e-8)
    assert next(canonical_maps(x, y, [1.0], [1.0], [2])).dim == 2  # auto: N > both widths -> covariance


def test_loaded_maps_give_the_same_vectors_and_absent_modalities_sit_at_the_mean():
    rng = np.random.default_rng(1)
    space = JointSpace({"audio": 4, "image": 3}, text_dim=5, dim=3).eval()
    space.fit_input_scaling({"audio": torch.randn(50, 4) * 3 + 1, "image": torch.randn(50, 3)})
    emb = {"audio": torch.randn(6, 4), "image": torch.randn(6, 3)}
    present = {"audio": torch.tensor([1, 1, 0, 1, 0, 1]).bool(), "image": torch.tensor([1, 0, 1, 1, 1, 0]).bool()}
    design = space.album_design(emb, present).numpy().astype(np.float64)
    assert design.shape == (6, 4 + 3 + 2) and np.all(design[2, :4] == 0) and design[:, -2:].tolist()[2] == [0, 1]
    view = rng.random((6, 5))
    (maps,) = canonical_maps(design, view, [1.0], [1.0], [3])
    space.load_canonical_maps(maps)
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    with torch.no_grad():
        albums, known = space.album(emb, present)
    assert known.all()
    assert np.allclose(albums.numpy(), unit(maps.album(design)), atol=1e-5)
    with torch.no_grad():
        texts = space.text(torch.as_tensor(view, dtype=torch.float32))
    assert np.allclose(texts.numpy(), unit(maps.text(view)), atol=1e-5)
    with pytest.raises(ValueError, match="fusion"):
        JointSpace({"audio": 4}, text_dim=5, dim=3, fusion="mean").load_canonical_maps(maps)


def _viewed_catalog(n=240, seed=0, shuffle_train_text=False):
    """Latent-taste albums whose text vector is unit length, as a sparse view's is."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 6))
    view = lambda dim: z @ rng.normal(size=(6, dim)) + 0.3 * rng.normal(size=(n, dim))  # noqa: E731
    audio, image, words = view(12), view(10), view(20)
    if shuffle_train_text:
        seen = np.arange(0, 200)
        words[seen] = words[rng.permutation(seen)]
    text = words / np.linalg.norm(words, axis=1, keepdims=True)
    splits = {"train": np.arange(0, 160), "val": np.arange(160, 200), "test": np.arange(200, n)}
    present = lambda p: rng.random(n) > p  # noqa: E731
    text_present = present(0.1)
    return JointData({"audio": audio, "image": image}, {"audio": present(0.1) | ~text_present, "image": present(0.2)},
                     text, text_present, DescriptionEmbeddings.empty(20), [["x"]] * n, splits)


@pytest.mark.parametrize("shuffled", [False, True])
def test_the_closed_form_space_learns_and_shuffled_pairs_do_not(shuffled):
    torch.set_num_threads(1)
    data = _viewed_catalog(shuffle_train_text=shuffled)
    settings = JointSettings(method="cca", max_epochs=0, text_sources=["own"],
                             cca={"album_ridge": [1.0], "text_ridge": [0.3, 1.0], "dims": [4, 8]})
    space, report = fit_joint_space(data, settings, progress=False)
    assert report["best_epoch"] == -1 and report["epochs"] == 0 and len(report["cca_grid"]) == 4
    assert space.dim == report["cca_chosen"]["dim"]
    assert_learns_unless_shuffled(validate(space, data, data.splits["test"]), shuffled)


def test_infonce_fine_tuning_starts_from_the_closed_form_and_keeps_it_unless_val_improves():
    torch.set_num_threads(1)
    data = _viewed_catalog()
    settings = JointSettings(method="cca", max_epochs=3, patience=3, text_sources=["own"],
                             cca={"album_ridge": [1.0], "text_ridge": [1.0], "dims": [8]})
    space, report = fit_joint_space(data, settings, progress=False)
    assert report["epochs"] >= 1 and report["best_epoch"] >= -1 and space.dim == 8


@pytest.mark.parametrize("change,message", [({"fusion": "mean"}, "fusion"), ({"text_sources": []}, "text_sources"),
                                            ({"method": "svd"}, "method")])
def test_settings_the_closed_form_cannot_use_are_refused_clearly(change, message):
    data = _viewed_catalog(n=240)
    settings = JointSettings(**{**dict(method="cca", max_epochs=0, text_sources=["own"]), **change})
    with pytest.raises(ValueError, match=message):
        fit_joint_space(data, settings, progress=False)


def test_a_text_only_album_under_sum_fusion_is_its_text_vector():
    space = JointSpace({"audio": 4}, text_dim=5, dim=3).eval()
    with torch.no_grad():
        space.album_bias.fill_(5.0)
        text = torch.rand(2, 5)
        vectors, known = space.album({"audio": torch.randn(2, 4)}, {"audio": torch.tensor([False, True])},
                                     text, torch.tensor([True, True]))
        assert known.all() and torch.allclose(vectors[0], space.text(text)[0], atol=1e-6)
        assert not torch.allclose(vectors[1], space.text(text)[1], atol=1e-3)
