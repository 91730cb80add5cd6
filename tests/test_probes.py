"""Linear probes stacked with the fused head (models/probes.py, training/probes.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genre_tagger.features.store import ModalityFeatures
from genre_tagger.metrics import macro_roc_auc
from genre_tagger.models.encoders.base import Encoder
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.training.probes import fit_logistic, fit_probes


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
