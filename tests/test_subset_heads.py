"""Per-subset deep heads (models/subset_heads.py, training/subset_heads.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from genre_tagger.features.store import ModalityFeatures
from genre_tagger.losses import BalancedBCEWithLogits
from genre_tagger.metrics import macro_roc_auc
from genre_tagger.models.encoders.base import Encoder
from genre_tagger.models.subset_heads import SubsetHead
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.prediction import predict_embeddings
from genre_tagger.training.subset_heads import (
    SubsetHeadSettings, blend_subset_heads, fine_tune, fit_subset_heads, head_logits, subset_inputs,
)

FAST = SubsetHeadSettings(enabled=True, epochs=15, lr=0.003, min_val_albums=30)


class Fixed(Encoder):
    """A stand-in frozen encoder: only its width matters on cached embeddings."""

    def __init__(self, dim: int):
        super().__init__(frozen=True)
        self.out_dim = dim


def toy(n: int = 600, labels: int = 6, seed: int = 0):
    """Audio carries labels 0-5 linearly (and text, more weakly); 25 % of texts missing."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, labels)) < 0.25).astype(np.float32)
    audio = rng.normal(size=(n, 12)).astype(np.float32)
    audio[:, :labels] += 1.5 * targets
    text_present = rng.random(n) > 0.25
    text = rng.normal(size=(n, 10)).astype(np.float32)
    text[:, :labels] += 1.0 * targets
    warnings = [[] for _ in range(n)]
    features = {"audio": ModalityFeatures(audio, np.ones(n, bool), warnings),
                "text": ModalityFeatures(text * text_present[:, None], text_present, warnings)}
    splits = {"train": np.arange(0, 360), "val": np.arange(360, 480), "test": np.arange(480, n)}
    return features, targets, splits


def untrained_tagger(labels: int = 6) -> GenreTagger:
    """A fused head that knows nothing: every subset head has something to win."""
    torch.manual_seed(0)
    return GenreTagger({"audio": Fixed(12), "text": Fixed(10)}, labels, width=16, head_hidden=32, probes=False)


def scores(tagger: GenreTagger, features: dict, rows: np.ndarray, modalities: list[str] | None = None) -> np.ndarray:
    return predict_embeddings(tagger, {m: f.embeddings for m, f in features.items()},
                              {m: f.present for m, f in features.items()}, rows, modalities)


def audio_head_auc(labels: np.ndarray, features: dict, targets: np.ndarray, splits: dict) -> float:
    tagger = untrained_tagger()
    head = SubsetHead.copied_from(tagger, ["audio"])
    train = splits["train"]
    fine_tune(head, subset_inputs(features, ("audio",), train, tagger.modalities), torch.from_numpy(labels[train]),
              BalancedBCEWithLogits(), tagger.modalities, FAST)
    test = splits["test"]
    logits = head_logits(head, subset_inputs(features, ("audio",), test, tagger.modalities), tagger.modalities)
    return macro_roc_auc(targets[test], logits.numpy())


def test_a_subset_head_learns_and_shuffled_labels_teach_it_nothing():
    features, targets, splits = toy()
    assert audio_head_auc(targets, features, targets, splits) > 0.72
    shuffled = targets.copy()
    train = splits["train"]
    shuffled[train] = targets[train][np.random.default_rng(1).permutation(len(train))]
    assert audio_head_auc(shuffled, features, targets, splits) < 0.62


def test_every_subset_gets_a_head_and_its_albums_the_average_of_both_heads():
    features, targets, splits = toy()
    tagger = untrained_tagger()
    old = copy.deepcopy(tagger)
    report = fit_subset_heads(tagger, features, targets, splits, BalancedBCEWithLogits(), FAST)
    assert set(tagger.subset_heads) == {"audio", "text"}
    assert all(own > fused + 0.08 for fused, own in report.subsets.values()), report.subsets
    test = splits["test"]
    # Albums with every modality: exactly the fused head's scores.
    both = test[features["text"].present[test]]
    assert np.array_equal(scores(tagger, features, both), scores(old, features, both))
    # Albums without text (and every album scored with audio alone): half the audio head's
    # logits, half the fused head's.
    audio_only = scores(tagger, features, test, ["audio"])
    own = head_logits(tagger.subset_heads["audio"], subset_inputs(features, ("audio",), test, tagger.modalities),
                      tagger.modalities)
    with torch.no_grad():
        fused = old.logits_from_embeddings({"audio": torch.from_numpy(features["audio"].embeddings[test])},
                                           {"audio": torch.ones(len(test), dtype=torch.bool)})
    np.testing.assert_allclose(audio_only, torch.sigmoid(0.5 * fused + 0.5 * own).numpy(), rtol=1e-5, atol=1e-6)
    lacking = test[~features["text"].present[test]]
    np.testing.assert_allclose(scores(tagger, features, lacking), scores(tagger, features, lacking, ["audio"]))
    assert macro_roc_auc(targets[test], audio_only) > macro_roc_auc(targets[test], scores(old, features, test, ["audio"])) + 0.2
    # Text alone goes to the text head, not the audio one.
    text_rows = test[features["text"].present[test]]
    assert not np.allclose(scores(tagger, features, text_rows, ["text"]), scores(old, features, text_rows, ["text"]))


def test_a_subset_with_too_few_val_albums_gets_no_head():
    features, targets, splits = toy()
    tagger = untrained_tagger()
    report = fit_subset_heads(tagger, features, targets, splits, BalancedBCEWithLogits(),
                              SubsetHeadSettings(enabled=True, min_val_albums=1000))
    assert not report.subsets and not len(tagger.subset_heads)


def test_a_blend_outside_0_to_1_is_refused_with_its_field():
    from genre_tagger.errors import UserInputError

    with pytest.raises(UserInputError, match="subset_heads.blend"):
        SubsetHeadSettings(blend=1.5)


def test_an_old_subset_heads_section_becomes_its_fresh_candidate():
    from genre_tagger.upgrade import upgrade_config

    old = {"subset_heads": {"enabled": True, "epochs": 10, "lr": 0.0003, "margin": 0.002, "fresh_epochs": 40,
                            "fresh_lr": 0.001, "min_val_albums": 50}}
    upgraded = upgrade_config(old)["subset_heads"]
    assert upgraded == {"enabled": True, "epochs": 40, "lr": 0.001, "min_val_albums": 50}
    SubsetHeadSettings(**upgraded)
    assert upgrade_config(upgrade_config(old)) == upgrade_config(old)


def test_only_proper_subsets_get_heads():
    tagger = untrained_tagger()
    with pytest.raises(ValueError):
        tagger.add_subset_head(["audio", "text"])
    with pytest.raises(ValueError):
        tagger.add_subset_head(["image"])


def tiny_bundle(probes: bool = False):
    from genre_tagger.bundle import TaggerBundle
    from genre_tagger.config import load_config
    from genre_tagger.data.dataset import build_loaders
    from genre_tagger.models.tagger import build_tagger

    config = load_config(["experiment/tiny"])
    config["model"].setdefault("tagger", {})["probes"] = probes
    modalities = ["audio", "image", "text"]
    torch.manual_seed(0)
    tagger = build_tagger(config["model"], modalities, n_labels=5).eval()
    loaders = build_loaders(config["data"]["loaders"], modalities)
    return TaggerBundle(tagger, loaders, [f"g{i}" for i in range(5)], np.full(5, 0.5, np.float32), config)


def embedding_batch(tagger: GenreTagger, n: int = 8):
    generator = torch.Generator().manual_seed(3)
    embeddings = {m: torch.randn(n, d, generator=generator) for m, d in tagger.input_widths.items()}
    present = {m: torch.ones(n, dtype=torch.bool) for m in tagger.modalities}
    present["audio"][: n // 2] = False  # half the albums: image + text only
    return embeddings, present


def test_subset_heads_round_trip_through_a_checkpoint_and_an_old_format_file_still_loads(tmp_path):
    from genre_tagger.checkpoint import load_checkpoint, save_checkpoint
    from genre_tagger.upgrade import TAGGER_FORMAT

    bundle = tiny_bundle()
    tagger = bundle.model
    embeddings, present = embedding_batch(tagger)
    with torch.no_grad():
        before = tagger.logits_from_embeddings(embeddings, present)
        head = tagger.add_subset_head(["image", "text"])
        for parameter in head.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        after = tagger.logits_from_embeddings(embeddings, present)
    assert torch.equal(after[4:], before[4:]) and not torch.allclose(after[:4], before[:4])
    save_checkpoint(tmp_path / "new.ckpt", bundle)
    loaded = load_checkpoint(tmp_path / "new.ckpt").model
    assert list(loaded.subset_heads) == ["image+text"]
    with torch.no_grad():
        torch.testing.assert_close(loaded.logits_from_embeddings(embeddings, present), after)

    payload = torch.load(tmp_path / "new.ckpt", weights_only=True)
    payload["format"] = f"{TAGGER_FORMAT}/4"  # before blending: the head's logits alone
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.endswith(".blend")}
    torch.save(payload, tmp_path / "v4.ckpt")
    v4 = load_checkpoint(tmp_path / "v4.ckpt").model
    assert float(v4.subset_heads["image+text"].blend) == 1.0
    with torch.no_grad():
        torch.testing.assert_close(v4.logits_from_embeddings(embeddings, present), after)

    payload["format"] = f"{TAGGER_FORMAT}/3"
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.startswith("subset_heads.")}
    torch.save(payload, tmp_path / "old.ckpt")
    old = load_checkpoint(tmp_path / "old.ckpt").model
    assert not len(old.subset_heads)
    with torch.no_grad():
        torch.testing.assert_close(old.logits_from_embeddings(embeddings, present), before)


def test_with_probes_albums_with_every_modality_keep_exactly_their_old_scores():
    from genre_tagger.training.probes import fit_probes

    features, targets, splits = toy()
    torch.manual_seed(0)
    plain = GenreTagger({"audio": Fixed(12), "text": Fixed(10)}, 6, width=16, head_hidden=32, probes=True)
    with_heads = copy.deepcopy(plain)
    fit_subset_heads(with_heads, features, targets, splits, BalancedBCEWithLogits(), FAST)
    assert len(with_heads.subset_heads)
    view_fits: dict = {}
    fit_probes(plain, features, targets, splits, view_fits=view_fits)
    fit_probes(with_heads, features, targets, splits, view_fits=view_fits)
    for key, value in plain.probes.state_dict().items():  # every stack fitted on the fused head's logits
        assert torch.equal(value, with_heads.probes.state_dict()[key]), key
    blend_subset_heads(with_heads, features, targets, splits["val"], 0.5)
    test = splits["test"]
    both = test[features["text"].present[test]]
    assert np.array_equal(scores(with_heads, features, both), scores(plain, features, both))
    # audio alone goes through the audio head (here the stack leans on the audio probe)
    assert not np.array_equal(scores(with_heads, features, test, ["audio"]), scores(plain, features, test, ["audio"]))


def test_a_subset_albums_scores_are_the_average_of_the_full_and_the_subset_models_stacked_logits():
    from genre_tagger.training.probes import fit_probes, fit_stacking

    features, targets, splits = toy()
    torch.manual_seed(0)
    tagger = GenreTagger({"audio": Fixed(12), "text": Fixed(10)}, 6, width=16, head_hidden=32, probes=True)
    fit_subset_heads(tagger, features, targets, splits, BalancedBCEWithLogits(), FAST)
    fit_probes(tagger, features, targets, splits)
    full = copy.deepcopy(tagger).eval()
    full.subset_heads.clear()
    blend_subset_heads(tagger, features, targets, splits["val"], 0.5)
    tagger.eval()
    order, probe = tagger.modalities, tagger.probes.probes[0]
    assert probe.view.modality == "audio"
    inputs = {"audio": torch.from_numpy(features["audio"].embeddings)}
    present = {"audio": torch.ones(len(targets), dtype=torch.bool)}

    def subset_model(rows: np.ndarray) -> torch.Tensor:
        embeddings, mask = subset_inputs(features, ("audio",), rows, order)
        return torch.stack([head_logits(tagger.subset_heads["audio"], (embeddings, mask), order),
                            probe(embeddings["audio"], mask[:, 0])])

    weights, offset = fit_stacking(subset_model(splits["val"]), targets[splits["val"]])[:2]
    test = splits["test"]
    with torch.no_grad():
        expected = 0.5 * full.logits_from_embeddings({m: e[test] for m, e in inputs.items()},
                                                     {m: p[test] for m, p in present.items()}) \
            + 0.5 * ((weights.view(-1, 1, 1) * subset_model(test)).sum(dim=0) + offset)
        got = tagger.logits_from_embeddings({m: e[test] for m, e in inputs.items()}, {m: p[test] for m, p in present.items()})
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_head_sharing_the_fused_projections_learns_and_round_trips_without_its_own(tmp_path):
    from genre_tagger.checkpoint import load_checkpoint, save_checkpoint

    features, targets, splits = toy()
    tagger = untrained_tagger()
    projections = copy.deepcopy(tagger.projections.state_dict())
    settings = SubsetHeadSettings(enabled=True, epochs=15, lr=0.003, min_val_albums=30, own_projections=False)
    report = fit_subset_heads(tagger, features, targets, splits, BalancedBCEWithLogits(), settings)
    assert report.subsets["audio"][1] > report.subsets["audio"][0] + 0.08
    assert not len(tagger.subset_heads["audio"].projections)
    for key, value in tagger.projections.state_dict().items():  # read, never trained
        assert torch.equal(value, projections[key])

    bundle = tiny_bundle()
    bundle.model.add_subset_head(["audio"], own_projections=False)
    embeddings, present = embedding_batch(bundle.model)
    present["image"][:] = present["text"][:] = False
    present["audio"][:] = True
    with torch.no_grad():
        for parameter in bundle.model.subset_heads["audio"].parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        expected = bundle.model.logits_from_embeddings(embeddings, present)
    save_checkpoint(tmp_path / "shared.ckpt", bundle)
    loaded = load_checkpoint(tmp_path / "shared.ckpt").model
    assert not len(loaded.subset_heads["audio"].projections)
    with torch.no_grad():
        torch.testing.assert_close(loaded.logits_from_embeddings(embeddings, present), expected)


def test_switched_off_nothing_is_fitted():
    features, targets, splits = toy()
    tagger = untrained_tagger()
    report = fit_subset_heads(tagger, features, targets, splits, BalancedBCEWithLogits(),
                              SubsetHeadSettings(enabled=False, min_val_albums=30))
    assert not report.subsets and not len(tagger.subset_heads)
