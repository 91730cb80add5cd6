"""Linear probes stacked with the fused head (models/probes.py, training/probes.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genre_tagger.features.store import ModalityFeatures
from genre_tagger.metrics import macro_roc_auc
from genre_tagger.models.encoders.base import Encoder
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.prediction import predict_embeddings
from genre_tagger.training import probes as probe_fitting
from genre_tagger.training.probes import fit_logistic, fit_probes
from genre_tagger.upgrade import TAGGER_FORMAT, upgrade_payload


class Fixed(Encoder):
    """A stand-in frozen encoder: only its width matters on cached embeddings."""

    def __init__(self, dim: int, modality: str, sparse: bool = False):
        super().__init__(frozen=True)
        self.out_dim, self.modality, self.sparse_output = dim, modality, sparse


class TwoViews(Encoder):
    """A MultiView-like encoder: a dense view and a sparse one, concatenated."""

    def __init__(self, dense: int, sparse: int):
        super().__init__(frozen=True)
        self.views = torch.nn.ModuleDict({"learned": Fixed(dense, "text"), "sparse": Fixed(sparse, "text", True)})
        self.out_dim, self.modality = dense + sparse, "text"


def toy_features(n: int = 600, labels: int = 6, seed: int = 0):
    """Audio embeddings carry labels 0-2 linearly; the text's sparse view has one rare keyword
    per label 3-5; the dense text view and the rest are noise. 20 % of texts are missing."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, labels)) < 0.2).astype(np.float32)
    audio = rng.normal(size=(n, 12)).astype(np.float32)
    audio[:, :3] += 1.5 * targets[:, :3]
    dense_text = rng.normal(size=(n, 8)).astype(np.float32)
    sparse_text = np.zeros((n, 40), dtype=np.float32)
    for row in range(n):
        sparse_text[row, rng.choice(40, 3, replace=False)] = 0.3  # common noise terms
        for label in range(3, labels):
            if targets[row, label] and rng.random() < 0.8:
                sparse_text[row, label] = 1.0
    text_present = rng.random(n) > 0.2
    features = {
        "audio": ModalityFeatures(audio, np.ones(n, dtype=bool), [[] for _ in range(n)]),
        "text": ModalityFeatures(np.concatenate([dense_text, sparse_text], axis=1) * text_present[:, None],
                                 text_present, [[] for _ in range(n)]),
    }
    splits = {"train": np.arange(0, 360), "val": np.arange(360, 480), "test": np.arange(480, n)}
    return features, targets, splits


def toy_tagger(labels: int = 6) -> GenreTagger:
    torch.manual_seed(0)
    return GenreTagger({"audio": Fixed(12, "audio"), "text": TwoViews(8, 40)}, labels, width=8, head_hidden=8,
                       probes=True)


def logits(tagger: GenreTagger, features: dict, rows: np.ndarray) -> torch.Tensor:
    tagger.eval()
    with torch.no_grad():
        return tagger.logits_from_embeddings({m: torch.from_numpy(f.embeddings[rows]) for m, f in features.items()},
                                             {m: torch.from_numpy(f.present[rows]) for m, f in features.items()})


def test_logistic_regression_fits_a_separable_label_and_penalty_shrinks_it():
    x = torch.randn(200, 3)
    y = (x[:, :1] > 0).float()
    start = (torch.zeros(3, 1), torch.zeros(1))
    weak, _ = fit_logistic(x, y, 100.0, start)
    strong, _ = fit_logistic(x, y, 0.001, start)
    assert weak[0, 0] > 2 and abs(weak[1, 0]) < weak[0, 0] / 3
    assert 0 < strong[0, 0] < weak[0, 0] / 5


def test_probes_are_inert_until_fitted():
    features, _, _ = toy_features()
    tagger = toy_tagger()
    rows = np.arange(10)
    tagger.probes.probes[0].weight.fill_(5.0)  # would change everything, were it fitted
    before = logits(tagger, features, rows)
    tagger.probes = None
    torch.testing.assert_close(logits(tagger, features, rows), before)


def test_probes_learn_each_view_and_the_stack_weighs_the_informative_ones():
    features, targets, splits = toy_features()
    tagger = toy_tagger()
    report = fit_probes(tagger, features, targets, splits)
    assert set(report.chosen_c) == {"audio", "text.learned", "text.sparse"}
    # Each informative view carries half the labels: macro ROC-AUC ~ (0.5 + its AUC on them) / 2.
    assert report.view_val_auc["audio"] > 0.62 and report.view_val_auc["text.sparse"] > 0.62
    assert report.view_val_auc["text.learned"] < 0.58  # noise
    assert report.stack["text.learned"] < min(report.stack["audio"], report.stack["text.sparse"])
    test = splits["test"]
    auc = macro_roc_auc(targets[test], logits(tagger, features, test).numpy())
    assert auc > 0.78, auc

    shuffled = targets.copy()
    shuffled[splits["train"]] = targets[splits["train"]][np.random.default_rng(1).permutation(len(splits["train"]))]
    tagger_shuffled = toy_tagger()
    fit_probes(tagger_shuffled, features, shuffled, splits)
    assert macro_roc_auc(targets[test], logits(tagger_shuffled, features, test).numpy()) < 0.65


def test_fitted_probes_round_trip_through_the_state_dict_and_absent_text_speaks_no_more():
    features, targets, splits = toy_features()
    tagger = toy_tagger()
    fit_probes(tagger, features, targets, splits)
    rebuilt = toy_tagger()
    rebuilt.load_state_dict(tagger.state_dict())
    rows = np.arange(40)
    torch.testing.assert_close(logits(rebuilt, features, rows), logits(tagger, features, rows))
    # An album whose text is absent gets the same scores whatever its text slot holds.
    absent = np.flatnonzero(~features["text"].present[:40])
    changed = {m: ModalityFeatures(f.embeddings.copy(), f.present, f.warnings) for m, f in features.items()}
    changed["text"].embeddings[absent] = 7.0
    torch.testing.assert_close(logits(tagger, changed, absent), logits(tagger, features, absent))


def test_word_units_join_pieces_so_a_split_word_is_one_term():
    from genre_tagger.models.encoders.sparse_text import word_terms

    continuation = torch.zeros(20, dtype=torch.bool)
    continuation[[7, 8]] = True  # "##" pieces
    ids = torch.tensor([[[5, 7, 8, 9, 5, 7, 8, 0]]])  # w1 = 5+7+8, 9, w1 again, padding
    mask = torch.tensor([[[1, 1, 1, 1, 1, 1, 1, 0]]]).bool()
    terms, valid = word_terms(ids, mask, continuation, 1000, 500)
    unigrams, bigrams = terms[..., :8][valid[..., :8]].tolist(), terms[..., 8:][valid[..., 8:]].tolist()
    assert len(unigrams) == 3 and unigrams[0] == unigrams[2] != unigrams[1]
    assert len(bigrams) == 2 and bigrams[0] != bigrams[1] and all(1000 <= b < 1500 for b in bigrams)
    # The same word split differently ("5 8 7") is another word.
    other, other_valid = word_terms(torch.tensor([[[5, 8, 7]]]), torch.ones(1, 1, 3, dtype=torch.bool), continuation, 1000, 500)
    assert other[..., :3][other_valid[..., :3]].tolist() != [unigrams[0]]


def test_probes_stay_off_without_a_usable_val_split():
    features, targets, splits = toy_features()
    tagger = toy_tagger()
    empty_val = dict(splits, val=np.array([], dtype=np.int64))
    report = fit_probes(tagger, features, targets, empty_val)
    assert not report.chosen_c and not bool(tagger.probes.fitted)
    assert "not fitted" in report.line()


def test_stack_ranks_by_the_informative_component_and_keeps_the_scale_on_weak_signal():
    """Weak evidence and rare labels on a small val split: the weights still sum to the given
    scale (a cross-entropy-fitted scale shrinks to ~1e-9 here, and float32 then ties every
    album) and favour the component that ranks better."""
    from genre_tagger.training.probes import fit_stack

    generator = torch.Generator().manual_seed(0)
    y = (torch.rand(60, 250, generator=generator) < 0.02).float()
    weak, strong = 0.3 * y + torch.randn(60, 250, generator=generator), y + torch.randn(60, 250, generator=generator)
    components = torch.stack([weak, strong])
    components = components - components.mean(dim=1, keepdim=True)
    components = components / components.flatten(1).std(dim=1).view(-1, 1, 1)
    weights, offset = fit_stack(components, y, scale=2.0)
    assert float(weights.sum()) == pytest.approx(2.0) and bool((weights >= 0).all())
    assert weights[1] > 2 * weights[0]
    stacked = (weights.view(-1, 1, 1) * components).sum(dim=0) + offset
    assert macro_roc_auc(y.numpy(), stacked.numpy()) > macro_roc_auc(y.numpy(), weak.numpy()) + 0.1


def test_standardization_leaves_dead_units_at_scale_one():
    """A column that varies only by float residue (a dead ReLU unit) must not be blown up to
    unit variance: it would become a pure-noise feature of the probe."""
    from genre_tagger.models.probes import ViewProbe, ViewSlice
    from genre_tagger.training.probes import set_standardization

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.3, (50, 2)), rng.normal(1e-6, 1e-7, (50, 1))], axis=1).astype(np.float32)
    probe = ViewProbe(ViewSlice("audio", "audio", 0, 3), n_labels=2)
    set_standardization(probe, x, np.ones(50, dtype=bool), np.arange(50))
    assert probe.scale[2] == 1.0 and 0.2 < float(probe.scale[0]) < 0.4


def test_out_of_fold_logits_never_see_their_own_labels():
    from genre_tagger.training.probes import out_of_fold_logits

    features, targets, splits = toy_features()
    probe = toy_tagger().probes.probes[0]  # the audio view
    train = splits["train"]
    grid = (0.01, 1.0)
    before = out_of_fold_logits(probe, features["audio"], targets, train, grid, folds=4)
    flipped = targets.copy()
    flipped[train[0]] = 1 - flipped[train[0]]
    after = out_of_fold_logits(probe, features["audio"], flipped, train, grid, folds=4)
    for c in grid:
        assert before[c].shape == (len(train), targets.shape[1])
        np.testing.assert_allclose(before[c][0], after[c][0], atol=1e-5)  # its own fold's model is unchanged
        assert not np.allclose(before[c], after[c])  # the other folds' models did read the flipped label
    assert macro_roc_auc(targets[train][:, :3], before[1.0][:, :3]) > 0.75  # the informative labels


def test_small_val_splits_choose_c_with_folds_and_large_ones_on_val_alone():
    features, targets, splits = toy_features()
    report = fit_probes(toy_tagger(), features, targets, splits, cv_folds=3, cv_max_val=200)  # val: 120
    assert report.cv_folds == 3 and "3-fold CV" in report.line()
    report = fit_probes(toy_tagger(), features, targets, splits, cv_folds=3, cv_max_val=100)
    assert report.cv_folds == 0 and "C by val" in report.line()
    assert report.stacked_val_auc > 0.75


# Per-subset stacks: an album that lacks a modality is scored with weights chosen for the
# modalities it has; each view's probe is fitted once for taggers over the same data.


class TextReliantHead(GenreTagger):
    """A stand-in fused head that is excellent with text and misleading without it: its
    logits are the text's dense view where text is present, else loud noise from audio
    columns that carry no label. Stacked with weights chosen on albums that have both, an
    audio-only album is ranked by that noise unless it gets a stack of its own."""

    def logits_from_embeddings(self, embeddings, present):
        n = len(next(iter(embeddings.values())))
        mask = torch.stack([present[m].bool() if m in embeddings else torch.zeros(n, dtype=torch.bool)
                            for m in self.modalities], dim=1)  # [B, 2]: audio, text
        deep = torch.zeros(n, 6)
        if "audio" in embeddings:
            deep = 3.0 * embeddings["audio"][:, 6:12].float() * mask[:, :1]
        if "text" in embeddings:
            deep = torch.where(mask[:, 1:], 2.0 * embeddings["text"][:, :6].float().abs(), deep)
        return self.probes(deep, {m: e.float() for m, e in embeddings.items()}, mask, self.modalities)


def text_reliant(targets: np.ndarray, seed: int = 0):
    """Audio columns 0-5 carry every label weakly, 6-11 nothing; the text's dense view carries
    every label strongly in its magnitude, with a random sign (so that only the stand-in head
    reads it, not a linear probe); 20 % of texts missing (``toy_features``' splits)."""
    features, _, splits = toy_features(seed=seed)
    rng = np.random.default_rng(seed + 10)
    n = len(targets)
    audio = rng.normal(size=(n, 12)).astype(np.float32)
    audio[:, :6] += 1.2 * targets
    present = features["text"].present
    text = features["text"].embeddings.copy()
    sign = rng.choice([-1.0, 1.0], size=(n, 6))
    text[:, :6] = sign * (0.5 * rng.normal(size=(n, 6)) + 3.0 * targets) * present[:, None]
    warnings = [[] for _ in range(n)]
    return {"audio": ModalityFeatures(audio, np.ones(n, bool), warnings),
            "text": ModalityFeatures(text.astype(np.float32), present, warnings)}, splits


def text_reliant_tagger() -> TextReliantHead:
    return TextReliantHead({"audio": Fixed(12, "audio"), "text": TwoViews(8, 40)}, 6, width=8, head_hidden=8)


def audio_only_auc(tagger: GenreTagger, features: dict, targets: np.ndarray, rows: np.ndarray) -> float:
    scores = predict_embeddings(tagger, {m: f.embeddings for m, f in features.items()},
                                {m: f.present for m, f in features.items()}, rows, modalities=["audio"])
    return macro_roc_auc(targets[rows], scores)


def with_and_without_own_stacks(targets: np.ndarray, shuffle: bool = False) -> tuple[float, float, dict]:
    """Test macro ROC-AUC with only audio, with and without per-subset stacks; ``shuffle``:
    the training and val albums' labels permuted before fitting."""
    features, splits = text_reliant(targets)
    fitted_on = targets.copy()
    if shuffle:
        seen = np.concatenate([splits["train"], splits["val"]])
        fitted_on[seen] = targets[seen][np.random.default_rng(1).permutation(len(seen))]
    tagger = text_reliant_tagger()
    report = probe_fitting.fit_probes(tagger, features, fitted_on, splits)
    with_own = audio_only_auc(tagger, features, targets, splits["test"])
    tagger.probes.subset_fitted.zero_()
    return with_own, audio_only_auc(tagger, features, targets, splits["test"]), report.subsets


def test_albums_without_text_score_better_with_their_own_stack_and_shuffled_labels_gain_nothing():
    _, targets, splits = toy_features()
    with_own, global_only, subsets = with_and_without_own_stacks(targets)
    assert subsets["audio"][1] > subsets["audio"][0]  # chosen out of fold on val
    assert with_own > global_only + 0.07 and with_own > 0.74, (with_own, global_only)

    with_own, global_only, _ = with_and_without_own_stacks(targets, shuffle=True)
    assert with_own < 0.62 and with_own < global_only + 0.05, (with_own, global_only)


def test_albums_with_every_modality_keep_the_global_stack():
    _, targets, splits = toy_features()
    features, splits = text_reliant(targets)
    tagger = text_reliant_tagger()
    probe_fitting.fit_probes(tagger, features, targets, splits)
    assert bool(tagger.probes.subset_fitted[tagger.probes.pattern(["audio"])])
    assert not bool(tagger.probes.subset_fitted[tagger.probes.pattern(["audio", "text"])])
    both = splits["test"][features["text"].present[splits["test"]]]
    with_own = predict_embeddings(tagger, {m: f.embeddings for m, f in features.items()},
                                  {m: f.present for m, f in features.items()}, both)
    tagger.probes.subset_fitted.zero_()
    np.testing.assert_allclose(predict_embeddings(tagger, {m: f.embeddings for m, f in features.items()},
                                                  {m: f.present for m, f in features.items()}, both), with_own)


def test_each_view_is_fitted_once_for_taggers_over_the_same_data(monkeypatch):
    features, targets, splits = toy_features()
    calls = []
    fit_view = probe_fitting.fit_view
    monkeypatch.setattr(probe_fitting, "fit_view", lambda probe, *a, **k: calls.append(probe.view.name) or
                        fit_view(probe, *a, **k))
    view_fits: dict = {}
    first, second = toy_tagger(), toy_tagger()
    probe_fitting.fit_probes(first, features, targets, splits, view_fits=view_fits)
    probe_fitting.fit_probes(second, features, targets, splits, view_fits=view_fits)
    assert sorted(calls) == ["audio", "text.learned", "text.sparse"]
    for a, b in zip(first.probes.probes, second.probes.probes):
        torch.testing.assert_close(a.weight, b.weight)
        torch.testing.assert_close(a.mean, b.mean)


def test_views_fitted_side_by_side_equal_one_after_another_on_one_thread(monkeypatch):
    features, targets, splits = toy_features()
    threads_seen = []
    fit_view = probe_fitting.fit_view
    monkeypatch.setattr(probe_fitting, "fit_view", lambda *a, **k: threads_seen.append(torch.get_num_threads()) or
                        fit_view(*a, **k))
    fitted, threads_before = {}, torch.get_num_threads()
    for cores in (1, 3):
        monkeypatch.setattr(probe_fitting, "usable_cores", lambda: cores)
        tagger = toy_tagger()
        fit_probes(tagger, features, targets, splits)
        fitted[cores] = tagger.probes.state_dict()
    assert threads_seen == [1] * 6  # three views, twice
    assert torch.get_num_threads() == threads_before  # the caller's thread count is back after
    for name, value in fitted[1].items():
        torch.testing.assert_close(fitted[3][name], value, rtol=0, atol=0, msg=name)


def test_a_version_2_checkpoint_gets_unfitted_subset_stacks_and_scores_as_before():
    features, targets, splits = toy_features()
    tagger = toy_tagger()
    probe_fitting.fit_probes(tagger, features, targets, splits, per_subset=False)
    state = {k: v for k, v in tagger.state_dict().items() if not k.startswith("probes.subset_")}
    payload = upgrade_payload({"format": f"{TAGGER_FORMAT}/2", "config": {}, "modalities": ["audio", "text"],
                               "labels": [str(i) for i in range(6)], "state_dict": state},
                              TAGGER_FORMAT, "old.ckpt", "a checkpoint")
    rebuilt = toy_tagger()
    rebuilt.load_state_dict(payload["state_dict"])
    assert not bool(rebuilt.probes.subset_fitted.any())
    rows = np.arange(60)
    arrays = ({m: f.embeddings for m, f in features.items()}, {m: f.present for m, f in features.items()})
    np.testing.assert_array_equal(predict_embeddings(rebuilt, *arrays, rows), predict_embeddings(tagger, *arrays, rows))
