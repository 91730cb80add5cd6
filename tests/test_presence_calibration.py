"""One scale for albums with and without some modalities (training/presence_calibration.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from genre_tagger.errors import UserInputError
from genre_tagger.metrics import macro_roc_auc
from genre_tagger.models.probes import without_presence_scale
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.prediction import predict_embeddings
from genre_tagger.search.data import genre_vectors
from genre_tagger.training.presence_calibration import (
    PresenceCalibrationSettings, RestrictedCopy, calibrate_presence, fit_pattern_scales, out_of_fold_auc,
    restricted_copies, store_scales,
)
from genre_tagger.training.probes import fit_probes, tagger_logits
from test_subset_heads import Fixed, toy

AUDIO, TEXT, BOTH = 1, 2, 3  # presence patterns of (audio, text)


def miscalibrated_copies(seed: int, n: int = 300, labels: int = 8) -> tuple[list[RestrictedCopy], np.ndarray]:
    """Albums scored with audio, text and both; the audio-only scores rank well within
    themselves but sit low and spread out, text-only ones sit high; a third lack text."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, labels)) < 0.2).astype(np.float32)
    noise = lambda: rng.normal(size=(n, labels))  # noqa: E731
    audio = 4.0 * (y + 0.7 * noise()) - 6.0
    text = y + 0.7 * noise() + 1.0
    both = 2.0 * (y + 0.5 * noise()) - 1.5
    has_text = rng.random(n) > 0.33
    both = np.where(has_text[:, None], both, audio)
    mixed = torch.from_numpy(np.where(has_text, BOTH, AUDIO))
    copies = [RestrictedCopy(("audio",), torch.from_numpy(audio), torch.full((n,), AUDIO)),
              RestrictedCopy(("text",), torch.from_numpy(np.where(has_text[:, None], text, -4.0)),
                             torch.from_numpy(np.where(has_text, TEXT, 0))),
              RestrictedCopy(("audio", "text"), torch.from_numpy(both), mixed)]
    return copies, y


def test_pattern_scales_put_every_pattern_on_one_scale_and_shuffled_labels_gain_nothing():
    val, y_val = miscalibrated_copies(0)
    test, y_test = miscalibrated_copies(1)
    scales = fit_pattern_scales(val, y_val, BOTH, penalty=0.01)
    assert set(scales.means) == {AUDIO, TEXT}  # the complete pattern and "none" stay as they are
    assert scales.scale[AUDIO] < 0.7 and scales.shift[AUDIO] > 0.5 and scales.shift[TEXT] < 0
    pooled = test[2]
    before = macro_roc_auc(y_test, pooled.logits.numpy())
    after = macro_roc_auc(y_test, scales.apply(pooled.logits, pooled.patterns).numpy())
    assert after > before + 0.05, (before, after)
    plain, scaled = out_of_fold_auc(val, y_val, BOTH, penalty=0.01)
    assert scaled > plain + 0.02
    shuffled = y_val[np.random.default_rng(2).permutation(len(y_val))]
    plain, scaled = out_of_fold_auc(val, shuffled, BOTH, penalty=0.01)
    assert scaled < plain + 0.01, (plain, scaled)


def fitted_tagger():
    """The toy catalog's untrained fused head with its two probes fitted and stacked."""
    features, targets, splits = toy()
    torch.manual_seed(0)
    tagger = GenreTagger({"audio": Fixed(12), "text": Fixed(10)}, targets.shape[1], width=16, head_hidden=32)
    fit_probes(tagger, features, targets, splits)
    return tagger, features, targets, splits


def test_stored_scales_move_only_the_albums_that_lack_a_modality_and_search_profiles_not_at_all():
    tagger, features, targets, splits = fitted_tagger()
    val, test = splits["val"], splits["test"]
    copies = restricted_copies(tagger, features, test)
    scales = fit_pattern_scales(restricted_copies(tagger, features, val), targets[val], BOTH, penalty=0.01)
    store_scales(tagger.probes, scales)
    after = restricted_copies(tagger, features, test)
    for old, new in zip(copies, after):
        torch.testing.assert_close(new.logits, scales.apply(old.logits, old.patterns), rtol=1e-4, atol=1e-4)
        complete = old.patterns == BOTH
        assert torch.equal(new.logits[complete], old.logits[complete])
    assert bool((after[0].logits != copies[0].logits).any())  # audio alone moved
    with without_presence_scale():
        unscaled = restricted_copies(tagger, features, test)
    assert all(torch.equal(a.logits, b.logits) for a, b in zip(copies, unscaled))
    bundle = SimpleNamespace(model=tagger, modalities=tagger.modalities, scores=lambda f, modalities:
                             predict_embeddings(tagger, {m: x.embeddings for m, x in f.items()}, {m: x.present for m, x in f.items()},
        np.arange(len(targets)), modalities))
    profiles = genre_vectors(bundle, features, ["audio"])
    with without_presence_scale():
        plain = predict_embeddings(tagger, {m: x.embeddings for m, x in features.items()},
                                   {m: x.present for m, x in features.items()}, np.arange(len(targets)), ["audio"])
    np.testing.assert_allclose(profiles, plain / np.linalg.norm(plain, axis=1, keepdims=True), rtol=1e-5)


def test_a_checkpoint_keeps_the_scales_and_a_format_5_file_loads_without_them(tmp_path):
    from genre_tagger.checkpoint import load_checkpoint, save_checkpoint
    from genre_tagger.upgrade import TAGGER_FORMAT
    from test_subset_heads import embedding_batch, tiny_bundle

    bundle = tiny_bundle(probes=True)
    probes = bundle.model.probes
    probes.fitted.fill_(True), probes.stack.fill_(1.0)
    embeddings, present = embedding_batch(bundle.model)
    with torch.no_grad():
        before = bundle.model.logits_from_embeddings(embeddings, present)
        probes.presence_scale[probes.pattern(["image", "text"])] = 0.5
        probes.presence_shift[probes.pattern(["image", "text"])] = 1.0
        after = bundle.model.logits_from_embeddings(embeddings, present)
    assert torch.equal(after[4:], before[4:]) and not torch.allclose(after[:4], before[:4])
    save_checkpoint(tmp_path / "new.ckpt", bundle)
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(tmp_path / "new.ckpt").model.logits_from_embeddings(
            embeddings, present), after)
    payload = torch.load(tmp_path / "new.ckpt", weights_only=True)
    payload["format"] = f"{TAGGER_FORMAT}/5"
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if ".presence_" not in k}
    torch.save(payload, tmp_path / "v5.ckpt")
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(tmp_path / "v5.ckpt").model.logits_from_embeddings(
            embeddings, present), before)


def test_calibration_is_skipped_when_disabled_or_val_is_small_and_otherwise_reports_its_choice():
    tagger, features, targets, splits = fitted_tagger()
    before = tagger_logits(tagger, features, splits["test"])
    off = calibrate_presence(tagger, features, targets, splits["val"], PresenceCalibrationSettings(enabled=False))
    small = calibrate_presence(tagger, features, targets, splits["val"], PresenceCalibrationSettings(min_val_albums=500))
    assert not off.scales and not small.scales and "too few val albums" in small.line()
    assert "enabled is false" in off.line()
    assert torch.equal(tagger_logits(tagger, features, splits["test"]), before)
    report = calibrate_presence(tagger, features, targets, splits["val"], PresenceCalibrationSettings())
    assert set(report.scales) == {"audio", "text"} and np.isfinite(report.before) and np.isfinite(report.after)
    assert report.kept == (report.after > report.before)
    changed = not torch.equal(tagger_logits(tagger, features, splits["test"]), before)
    assert changed == report.kept


def test_a_negative_penalty_is_refused_with_its_field():
    with pytest.raises(UserInputError, match="presence_calibration.penalty"):
        PresenceCalibrationSettings(penalty=-1)


def test_profile_reads_skip_the_scale_on_their_own_thread_only():
    from concurrent.futures import ThreadPoolExecutor

    from test_subset_heads import embedding_batch, tiny_bundle

    tagger = tiny_bundle(probes=True).model
    tagger.probes.fitted.fill_(True), tagger.probes.stack.fill_(1.0)
    embeddings, present = embedding_batch(tagger)
    logits = lambda: tagger.logits_from_embeddings(embeddings, present)  # noqa: E731
    with torch.no_grad():
        plain = logits()
        tagger.probes.presence_scale[tagger.probes.pattern(["image", "text"])] = 0.5
        scaled = logits()
        with without_presence_scale(), ThreadPoolExecutor(1) as pool:
            assert torch.equal(logits(), plain)
            assert torch.equal(pool.submit(logits).result(), scaled)  # another thread: a tag request
        assert torch.equal(logits(), scaled)
    assert not torch.equal(plain, scaled)
