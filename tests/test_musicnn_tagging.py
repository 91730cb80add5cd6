"""The musicnn loader, encoder and zero-shot tagging (``tag --checkpoint pretrained:musicnn-*``)."""

import importlib.util
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from genre_tagger.cli import main
from genre_tagger.data.records import AlbumRecord
from genre_tagger.pretrained import musicnn_audio as ma
from genre_tagger.pretrained.loader import MusicnnAudioLoader
from genre_tagger.testing.dummies import write_garbage, write_tone

pytestmark = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                                reason="musicnn weights not installed (pip install --no-deps musicnn==0.1.0)")


def record(paths, album_id="a"):
    return AlbumRecord(id=album_id, audio=[str(p) for p in paths])


def test_whole_track_mode_is_musicnns_full_clip_computation(tmp_path):
    path = write_tone(tmp_path / "t.wav", seconds=10.0, sample_rate=44100, channels=2)
    loader = MusicnnAudioLoader(patches_per_track=None)
    item, warnings = loader.load(record([path]))
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    wave = ma.kaiser_best_resampler(rate)(torch.from_numpy(audio.mean(axis=1)))
    expected = ma.patches(ma.log_mel(wave))
    assert warnings == [] and item.shape == ((1 + wave.shape[0] // 256) // 187, 96, 187) == expected.shape
    torch.testing.assert_close(item, expected, rtol=1e-5, atol=1e-5)


def test_crop_mode_reads_patches_per_track_and_reports_bad_files(tmp_path):
    good = [write_tone(tmp_path / f"{i}.ogg", seconds=12.0, sample_rate=22050, freq=300.0 + 50 * i) for i in range(3)]
    bad = write_garbage(tmp_path / "bad.mp3")
    loader = MusicnnAudioLoader(patches_per_track=2, max_tracks=4)
    item, warnings = loader.load(record([bad, *good, tmp_path / "missing.wav"]))
    assert item.shape == (6, 96, 187)
    assert any("bad.mp3" in w for w in warnings) and any("missing.wav" in w for w in warnings)
    batch = loader.collate([item, None])
    assert batch["mels"].shape == (2, 6, 96, 187) and batch["present"].tolist() == [True, False]
    assert loader.load(record([]))[0] is None
    budget = MusicnnAudioLoader(patches_per_track=2, max_tracks=4, album_patches=3)
    assert budget.load(record(good))[0].shape[0] == 3  # 3 tracks: 1 patch each
    assert budget.load(record(good[:1]))[0].shape[0] == 2  # 1 track: up to patches_per_track
    two = MusicnnAudioLoader(patches_per_track=2, max_tracks=4, album_patches=2)
    assert two.load(record(good))[0].shape[0] == 2  # 2 of the 3 tracks, 1 patch each
    assert two.max_tracks == 4  # the loader itself is unchanged


def test_encoder_shapes_masking_and_determinism(tmp_path):
    from genre_tagger.models.encoders.musicnn import MusicnnEncoder

    encoder = MusicnnEncoder(model="mtt", layer="penultimate+taggram")
    assert encoder.out_dim == 250 and encoder.frozen and encoder.weights_from_package
    loader = MusicnnAudioLoader(patches_per_track=1)
    item, _ = loader.load(record([write_tone(tmp_path / "t.wav", seconds=4.0)]))
    batch = loader.collate([item, None, item])
    out = encoder.encode(batch)
    assert out.shape == (3, 250)
    assert torch.equal(out[1], torch.zeros(250))
    torch.testing.assert_close(out[0], out[2], rtol=1e-5, atol=1e-5)
    assert torch.equal(out, encoder.encode(batch))
    with pytest.raises(ValueError, match="unknown layer"):
        MusicnnEncoder(layer="nope")
    assert not MusicnnEncoder(model="msd", frozen=False).weights_from_package  # fine-tuned weights are stored


def test_spread_mask_keeps_at_most_k_real_crops_evenly_spread():
    from genre_tagger.models.encoders.base import spread_mask

    mask = torch.tensor([[True] * 8, [True] * 3 + [False] * 5, [True] + [False] * 7, [False] * 8])
    kept = spread_mask(mask, 2)
    assert kept[0].nonzero().flatten().tolist() == [2, 6]  # ranks floor(0.5 * 8 / 2), floor(1.5 * 8 / 2)
    assert kept[1].nonzero().flatten().tolist() == [0, 2]
    assert kept[2].nonzero().flatten().tolist() == [0] and not kept[3].any()
    assert torch.equal(spread_mask(mask, 8), mask)


def test_encoder_patch_budget_encodes_only_the_spread_patches(tmp_path):
    from genre_tagger.models.encoders.base import spread_mask
    from genre_tagger.models.encoders.musicnn import MusicnnEncoder

    loader = MusicnnAudioLoader(patches_per_track=2, max_tracks=2)
    item, _ = loader.load(record([write_tone(tmp_path / "a.wav", seconds=8.0, freq=220.0),
                                  write_tone(tmp_path / "b.wav", seconds=8.0, freq=880.0)]))
    batch = loader.collate([item])
    assert int(batch["crop_mask"].sum()) == 4
    budget = MusicnnEncoder(model="msd", layer="mean_pool", max_patches=2)
    full = MusicnnEncoder(model="msd", layer="mean_pool")
    chosen = dict(batch, crop_mask=spread_mask(batch["crop_mask"], 2))
    torch.testing.assert_close(budget.encode(batch), full.encode(chosen), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(budget.encode(batch), full.encode(batch), atol=1e-4)


def clip(kind: str, rng: np.random.Generator) -> np.ndarray:
    """3 s at 16 kHz: a soft sustained chord ("drone") or fast broadband hits ("beat")."""
    t = np.arange(ma.PATCH_SAMPLES) / ma.SAMPLE_RATE
    if kind == "drone":
        f0 = rng.uniform(110, 330)
        return sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) for k in range(1, 6))
    rate = rng.uniform(6, 10)
    envelope = np.exp(-40 * ((t * rate) % 1.0) / rate)
    return 0.6 * envelope * rng.normal(size=t.shape)


def test_frozen_features_separate_two_kinds_of_music_and_shuffled_labels_do_not():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.metrics import roc_auc_score

    from genre_tagger.models.encoders.musicnn import MusicnnEncoder

    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 12)
    waves = torch.from_numpy(np.stack([clip("beat" if y else "drone", rng) for y in labels]).astype(np.float32))
    encoder = MusicnnEncoder(model="msd", layer="penultimate")
    with torch.no_grad():
        features = encoder.embed_patches(ma.log_mel(waves)).numpy()
    model = LogisticRegression(C=0.1, max_iter=2000)
    auc = roc_auc_score(labels, cross_val_predict(model, features, labels, cv=4, method="predict_proba")[:, 1])
    shuffled = rng.permutation(labels)
    auc_shuffled = roc_auc_score(shuffled, cross_val_predict(model, features, shuffled, cv=4, method="predict_proba")[:, 1])
    assert auc > 0.9
    assert auc_shuffled < 0.8


@pytest.fixture()
def zero_shot_manifest(tmp_path):
    write_tone(tmp_path / "a1.wav", seconds=7.0, sample_rate=22050, freq=220.0)
    write_tone(tmp_path / "a2.flac", seconds=4.0, freq=880.0)
    write_garbage(tmp_path / "broken.ogg")
    rows = [{"id": "two-tracks", "audio": ["a1.wav", "a2.flac"], "label": "x"},
            {"id": "one-broken", "audio": ["broken.ogg", "a2.flac"]},
            {"id": "text-only", "texts": ["no audio here"]}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_zero_shot_tag_writes_musicnn_tags_and_resumes(zero_shot_manifest, tmp_path, capsys):
    from genre_tagger.pretrained.weights import MTT_LABELS

    out = tmp_path / "tags.jsonl"
    args = ["tag", "--checkpoint", "pretrained:musicnn-mtt", "--manifest", str(zero_shot_manifest),
            "--output", str(out), "--num-workers", "0", "--quiet", "--all-scores"]
    assert main(args) == 0
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    album = records["two-tracks"]
    assert album["status"] == "ok" and album["modalities"] == ["audio"] and album["label"] == "x"
    assert set(album["scores"]) == set(MTT_LABELS)
    scores = list(album["scores"].values())
    assert scores == sorted(scores, reverse=True)
    assert album["genres"] == [tag for tag, s in album["scores"].items() if s >= 0.2]
    assert any("broken.ogg" in w for w in records["one-broken"]["warnings"])
    assert records["text-only"]["status"] == "error" and "no audio" in records["text-only"]["error"]
    assert main(args) == 0  # resuming: nothing is tagged twice
    assert len(out.read_text().splitlines()) == 3


def test_zero_shot_scores_are_the_mean_of_the_patch_sigmoids(tmp_path):
    from genre_tagger.checkpoint import load_checkpoint
    from genre_tagger.pretrained.weights import load_musicnn

    paths = [write_tone(tmp_path / "a.wav", seconds=7.0, freq=330.0), write_tone(tmp_path / "b.wav", seconds=4.0)]
    bundle = load_checkpoint("pretrained:musicnn-msd")
    loader = bundle.loaders["audio"]
    item, _ = loader.load(record(paths))
    assert item.shape[0] == 2 + 1  # 7 s -> 2 patches, 4 s -> 1 patch (tails dropped)
    with torch.no_grad():
        scores = torch.sigmoid(bundle.model({"audio": loader.collate([item])}))[0]
        expected = load_musicnn("msd").features(item)["taggram"].mean(dim=0)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    assert len(bundle.labels) == 50 and bundle.labels[0] == "rock"


def test_missing_or_damaged_weights_give_one_line_and_exit_2(zero_shot_manifest, tmp_path, monkeypatch, capsys):
    from genre_tagger.pretrained import weights

    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    weights._state_dict.cache_clear()
    code = main(["tag", "--checkpoint", "pretrained:musicnn-mtt", "--manifest", str(zero_shot_manifest),
                 "--output", str(tmp_path / "t.jsonl"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "pip install --no-deps musicnn==0.1.0" in err
    monkeypatch.undo()
    weights._state_dict.cache_clear()
    folder = tmp_path / "MTT_musicnn"
    shutil.copytree(weights.weights_folder("mtt"), folder)
    data = folder / ".data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(weights.WeightsUnavailable, match="SHA-256"):
        weights.verify_files(folder, weights.MODELS["mtt"])
    assert main(["tag", "--checkpoint", "pretrained:musicnn-xyz", "--manifest", str(zero_shot_manifest),
                 "--output", str(tmp_path / "u.jsonl"), "--quiet"]) == 2


@pytest.mark.slow
def test_train_with_the_musicnn_overlay_stores_no_pretrained_weights_and_tags(tiny_catalog, tmp_path):
    from conftest import TINY
    from genre_tagger.checkpoint import load_checkpoint
    from genre_tagger.training import train

    run_dir = tmp_path / "run"
    metrics = train(tiny_catalog, run_dir, modalities="audio", config_files=[*TINY, "model/audio_musicnn"],
                    progress=False)
    assert 0.0 <= metrics["val"]["macro_roc_auc"] <= 1.0
    payload = torch.load(run_dir / "model.ckpt", weights_only=True)
    assert not any(key.startswith("encoders.audio.") for key in payload["state_dict"])  # rebuilt from the wheel
    bundle = load_checkpoint(run_dir / "model.ckpt")
    assert type(bundle.loaders["audio"]).__name__ == "MusicnnAudioLoader"
    assert main(["tag", "--checkpoint", str(run_dir / "model.ckpt"), "--manifest", str(tiny_catalog),
                 "--output", str(tmp_path / "t.jsonl"), "--num-workers", "0", "--quiet"]) == 0


def test_fine_tuning_passes_gradients_into_the_pretrained_network():
    from genre_tagger.models.encoders.musicnn import MusicnnEncoder

    encoder = MusicnnEncoder(model="mtt", frozen=False).train()
    batch = {"mels": torch.rand(2, 1, 96, 100) * 3, "crop_mask": torch.ones(2, 1, dtype=torch.bool),
             "present": torch.ones(2, dtype=torch.bool)}
    encoder.encode(batch).sum().backward()
    assert encoder.net.timbral[0].conv.weight.grad.abs().sum() > 0
