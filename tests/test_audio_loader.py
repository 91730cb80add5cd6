"""AudioLoader on generated files: every format and rate, crop policy, bounded reads, broken input."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from genre_tagger.data import audio as audio_mod
from genre_tagger.data.audio import (
    AudioLoader,
    check_audio_file,
    crop_starts,
    decode_full,
    read_segment,
    spread_indices,
)
from genre_tagger.testing import (
    can_write_m4a,
    make_record,
    truncate_file,
    write_garbage,
    write_m4a,
    write_tone,
)

N_MELS, CROP_S, TARGET_SR = 32, 1.0, 16000


@pytest.fixture(scope="module")
def loader() -> AudioLoader:
    return AudioLoader(n_mels=N_MELS, crop_seconds=CROP_S, n_fft=512, hop_length=160)


def expected_mel_bin(freq: float, ld: AudioLoader) -> int:
    """The mel band whose filter responds most to a pure tone at ``freq``."""
    fb = torchaudio.functional.melscale_fbanks(ld.n_fft // 2 + 1, 0.0, ld.sample_rate / 2, ld.n_mels, ld.sample_rate)
    return int(fb[round(freq / (ld.sample_rate / ld.n_fft))].argmax())


def peak_bin(mels: torch.Tensor) -> int:
    """Band with the most energy, averaged over crops and frames (mels: [K, n_mels, F])."""
    return int(mels.exp().mean(dim=(0, 2)).argmax())


RATES = {
    "wav": (8000, 16000, 22050, 44100, 48000),
    "flac": (8000, 16000, 22050, 44100, 48000),
    "ogg": (8000, 16000, 22050, 44100, 48000),
    "opus": (8000, 16000, 48000),  # libopus only runs at 8/12/16/24/48 kHz
    "mp3": (8000, 16000, 22050, 44100, 48000),
}
# every format at every rate; mono and stereo alternate so each format and rate sees both
FORMAT_CASES = [
    (ext, rate, 1 + (f + r) % 2) for f, (ext, rates) in enumerate(RATES.items()) for r, rate in enumerate(rates)
]


@pytest.mark.parametrize("ext,rate,channels", FORMAT_CASES)
def test_every_format_rate_and_layout_decodes_to_the_tone(tmp_path, loader, ext, rate, channels):
    write_tone(tmp_path / f"t.{ext}", seconds=1.6, sample_rate=rate, channels=channels, freq=440.0)
    mels, warnings = loader.load(make_record(tmp_path, audio=f"t.{ext}"))
    assert warnings == []
    assert mels.dtype == torch.float32 and mels.shape == (1, N_MELS, loader.n_frames)
    assert torch.isfinite(mels).all()
    # mono: the 440 Hz band; stereo downmix: 440 Hz + 550 Hz, the peak at one of them
    expected = {expected_mel_bin(440.0, loader)} | ({expected_mel_bin(550.0, loader)} if channels == 2 else set())
    assert any(abs(peak_bin(mels) - b) <= 1 for b in expected)


@pytest.mark.skipif(not can_write_m4a(), reason="this PyAV cannot encode AAC")
@pytest.mark.parametrize("name,rate,channels", [("t.m4a", 22050, 1), ("t.m4a", 44100, 2), ("t.aac", 48000, 2)])
def test_m4a_and_aac_go_through_pyav(tmp_path, loader, name, rate, channels):
    path = write_m4a(tmp_path / name, seconds=8.0, sample_rate=rate, channels=channels)
    mels, warnings = loader.load(make_record(tmp_path, audio=name))
    assert warnings == [] and mels.shape == (2, N_MELS, loader.n_frames)
    assert abs(peak_bin(mels) - expected_mel_bin(440.0, loader)) <= 1 or channels == 2
    assert check_audio_file(path) is None
    # seek + pre-roll gives the very samples a full decode gives
    full, sr = decode_full(path)
    segment, _ = read_segment(path, 3 * sr, 4096)
    np.testing.assert_allclose(segment, full[3 * sr : 3 * sr + 4096], atol=1e-4)


def test_mp3_seek_is_sample_exact_after_preroll(tmp_path):
    # libsndfile's mp3 decoder is wrong for ~1.6k samples right after a bare seek
    path = write_tone(tmp_path / "t.mp3", seconds=6.0, sample_rate=44100, channels=2, freq=523.0)
    full, sr = decode_full(path)
    for start in (11_520, 100_003, 200_000):
        segment, _ = read_segment(path, start, 3000)
        np.testing.assert_allclose(segment, full[start : start + 3000], atol=1e-5)


def test_shapes_crop_counts_and_collate(tmp_path, loader):
    write_tone(tmp_path / "long.wav", seconds=5.0)  # 2 crops
    write_tone(tmp_path / "short.flac", seconds=0.3)  # shorter than a crop: 1 zero-padded crop
    two, _ = loader.load(make_record(tmp_path, audio=["long.wav"]))
    three, _ = loader.load(make_record(tmp_path, audio=["long.wav", "short.flac"]))
    short, _ = loader.load(make_record(tmp_path, audio=["short.flac"]))
    assert two.shape[0] == 2 and three.shape[0] == 3 and short.shape[0] == 1
    # the padded tail of the short clip is digital silence: log(0 + eps)
    assert short[0, :, -3:].max() < np.log(1e-5)
    batch = loader.collate([two, None, three])
    assert batch["mels"].shape == (3, 3, N_MELS, loader.n_frames)
    assert batch["crop_mask"].tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    assert batch["present"].tolist() == [True, False, True]
    assert torch.equal(batch["mels"][0, :2], two) and batch["mels"][1].abs().sum() == 0
    empty = loader.collate([None, None])
    assert empty["mels"].shape == (2, 1, N_MELS, loader.n_frames) and not empty["present"].any()


def test_missing_or_empty_audio_field_is_absent_without_warning(tmp_path, loader):
    assert loader.load(make_record(tmp_path)) == (None, [])


def test_eval_is_deterministic_and_training_is_random(tmp_path, loader):
    write_tone(tmp_path / "a.wav", seconds=8.0, freq=300.0)
    write_tone(tmp_path / "b.wav", seconds=8.0, freq=2000.0)
    record = make_record(tmp_path, audio=["a.wav", "b.wav"])
    first, _ = loader.load(record)
    assert torch.equal(first, loader.load(record)[0])
    torch.manual_seed(0)
    train_a, _ = loader.load(record, training=True)
    torch.manual_seed(0)
    train_b, _ = loader.load(record, training=True)
    torch.manual_seed(1)
    train_c, _ = loader.load(record, training=True)
    assert torch.equal(train_a, train_b) and not torch.equal(train_a, train_c)


def test_crop_policy():
    sr, crop, edge = 1000, 3000, 5000
    # long track: evenly spaced, inside the edges, deterministic
    starts = crop_starts(60 * sr, crop, 3, edge)
    assert starts == crop_starts(60 * sr, crop, 3, edge)
    assert len(starts) == 3 and starts[0] >= edge and starts[-1] + crop <= 60 * sr - edge
    gaps = np.diff(starts)
    assert gaps.max() - gaps.min() <= 1
    # too short for edges: uses the whole track; shorter than 2 crops: one crop
    assert crop_starts(8 * sr, crop, 2, edge) == [1250, 3750]
    assert crop_starts(5 * sr, crop, 2, edge) == [1000]
    assert crop_starts(2 * sr, crop, 2, edge) == [0]
    rand = crop_starts(60 * sr, crop, 2, edge, torch.Generator().manual_seed(3))
    assert len(rand) == 2 and all(0 <= s <= 57 * sr for s in rand)
    assert spread_indices(10, 4) == [1, 3, 6, 8] and spread_indices(3, 4) == [0, 1, 2]


def test_long_track_is_read_only_in_segments(tmp_path, monkeypatch):
    path = write_tone(tmp_path / "ten_minutes.wav", seconds=600.0, sample_rate=48000, channels=2)
    total = sf.info(str(path)).frames
    requested: list[int] = []
    original_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    ld = AudioLoader(crops_per_track=2, crop_seconds=3.0)
    start = time.perf_counter()
    mels, warnings = ld.load(make_record(tmp_path, audio="ten_minutes.wav"))
    elapsed = time.perf_counter() - start
    assert warnings == [] and mels.shape == (2, ld.n_mels, ld.n_frames)
    assert all(f > 0 for f in requested), "never 'read everything' (frames=-1)"
    assert sum(requested) <= 2 * 3 * 48000 + 2 * 8192 < total / 90
    assert elapsed < 5.0  # ~0.03 s idle; generous for busy CI machines


def test_broken_tracks_warn_with_their_path_and_the_rest_still_load(tmp_path, loader):
    write_tone(tmp_path / "good.wav", seconds=1.2)
    write_garbage(tmp_path / "tracks" / "noise.mp3")
    truncate_file(write_tone(tmp_path / "cut.flac", seconds=4.0), keep_fraction=0.01)
    record = make_record(tmp_path, audio=["good.wav", "tracks/noise.mp3", "missing.ogg", "cut.flac"])
    mels, warnings = loader.load(record)
    assert mels is not None and mels.shape[0] >= 1
    by_file = {w.split("'")[1]: w for w in warnings}
    noise, missing = str(tmp_path / "tracks" / "noise.mp3"), str(tmp_path / "missing.ogg")
    assert by_file[noise].startswith(f"audio: cannot decode '{noise}': ")
    assert by_file[missing] == f"audio: cannot decode '{missing}': no such file"
    assert all(w.startswith("audio: cannot decode '") for w in warnings)
    only_bad, warns = loader.load(make_record(tmp_path, audio=["tracks/noise.mp3"]))
    assert only_bad is None and len(warns) == 1


def test_max_tracks_spreads_and_replaces_unusable_tracks(tmp_path):
    freqs = [250.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0]
    for i, f in enumerate(freqs):
        write_tone(tmp_path / f"{i}.wav", seconds=1.0, freq=f)
    ld = AudioLoader(n_mels=64, crop_seconds=1.0, crops_per_track=1, max_tracks=2)
    mels, _ = ld.load(make_record(tmp_path, audio=[f"{i}.wav" for i in range(6)]))
    picked = [peak_bin(m[None]) for m in mels]
    assert picked == [expected_mel_bin(freqs[i], ld) for i in spread_indices(6, 2)]  # tracks 1 and 4
    write_garbage(tmp_path / "1.wav")  # a chosen track breaks: an unused one stands in
    mels, warnings = ld.load(make_record(tmp_path, audio=[f"{i}.wav" for i in range(6)]))
    assert mels.shape[0] == 2 and len(warnings) == 1 and "1.wav" in warnings[0]


def test_non_finite_samples_are_zeroed_with_a_warning_and_silence_is_fine(tmp_path, loader):
    data = np.zeros((16000, 1), np.float32)
    data[100:200] = np.nan
    data[300] = np.inf
    sf.write(tmp_path / "nan.wav", data, 16000, subtype="FLOAT")
    mels, warnings = loader.load(make_record(tmp_path, audio="nan.wav"))
    assert torch.isfinite(mels).all()
    assert warnings == [f"audio: '{tmp_path / 'nan.wav'}': replaced 101 non-finite samples with 0"]
    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    mels, warnings = loader.load(make_record(tmp_path, audio="silence.wav"))
    assert warnings == [] and torch.allclose(mels, torch.full_like(mels, float(np.log(1e-6))))


def test_decode_timeout_is_reported(tmp_path):
    write_tone(tmp_path / "a.wav", seconds=1.0)
    ld = AudioLoader(decode_timeout_s=-1.0)
    mels, warnings = ld.load(make_record(tmp_path, audio="a.wav"))
    assert mels is None and "took too long" in warnings[0]


def test_decode_full_and_check_audio_file(tmp_path):
    path = write_tone(tmp_path / "a.flac", seconds=2.0, sample_rate=22050, channels=2)
    data, sr = decode_full(path)
    assert sr == 22050 and data.shape == (44100, 2) and data.dtype == np.float32
    head, _ = decode_full(path, max_seconds=0.5)
    assert head.shape == (11025, 2) and np.array_equal(head, data[:11025])
    assert check_audio_file(path) is None
    assert check_audio_file(write_garbage(tmp_path / "x.ogg"))
    assert check_audio_file(tmp_path / "nope.wav") == "no such file"
    cut = truncate_file(write_tone(tmp_path / "cut.mp3", seconds=5.0), keep_fraction=0.5)
    assert check_audio_file(cut).startswith("truncated")
    with pytest.raises(audio_mod.AudioDecodeError):
        decode_full(tmp_path / "x.ogg")


def test_loader_pickles_after_use_and_reports_settings(tmp_path, loader):
    write_tone(tmp_path / "a.wav", seconds=1.0, sample_rate=44100)
    before, _ = loader.load(make_record(tmp_path, audio="a.wav"))
    clone = pickle.loads(pickle.dumps(loader))
    assert clone._mel is None and clone._resamplers == {}
    assert torch.equal(clone.load(make_record(tmp_path, audio="a.wav"))[0], before)
    assert AudioLoader(**loader.settings()).settings() == loader.settings()
    assert loader.spec()["class_path"] == "genre_tagger.data.audio.AudioLoader"


def test_mp3_seeks_print_nothing_on_stderr(tmp_path, capfd):
    """libmpg123 complains on fd 2 when a seek lands inside the bit reservoir of a low-rate
    mp3 ("part2_3_length too large"); crops are exact anyway (pre-roll), so nothing may
    reach the user's terminal, while a real decode error still raises."""
    rate = 22050
    t = np.arange(rate * 6) / rate
    bursts = np.random.default_rng(0).standard_normal(len(t)) * (np.sin(2 * np.pi * 4 * t) > 0.5)
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) + 0.2 * bursts).astype(np.float32)
    path = tmp_path / "reservoir.mp3"
    sf.write(str(path), wave, rate, format="MP3", subtype="MPEG_LAYER_III")
    capfd.readouterr()
    segments = [read_segment(path, start, 4000)[0] for start in range(0, rate * 5, 1000)]
    assert all(len(s) == 4000 for s in segments)
    assert capfd.readouterr().err == ""
