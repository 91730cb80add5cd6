"""musicnn's preprocessing against values derived independently (formulas, numpy STFT)."""

import numpy as np
import pytest
import torch

from genre_tagger.pretrained import musicnn_audio as ma


def test_filterbank_matches_torchaudio_slaney_and_has_unit_area():
    import torchaudio

    ours = ma.slaney_filterbank()
    theirs = torchaudio.functional.melscale_fbanks(257, 0.0, 8000.0, 96, 16000, norm="slaney", mel_scale="slaney").T.numpy()
    assert ours.shape == (96, 257) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # Slaney normalisation: each triangle has unit area in Hz (bins are 31.25 Hz apart);
    # the narrow low bands are sampled too coarsely for this to hold exactly
    areas = ours.sum(axis=1) * 16000 / 512
    np.testing.assert_allclose(areas[60:], 1.0, rtol=0.03)
    np.testing.assert_allclose(areas.mean(), 1.0, rtol=0.03)


def test_slaney_mel_scale_formula():
    # linear below 1 kHz: 3 mels per 200 Hz; logarithmic above, 27 mels per factor 6.4
    assert ma.hz_to_mel_slaney(1000.0) == pytest.approx(15.0)
    assert ma.hz_to_mel_slaney(200.0) == pytest.approx(3.0)
    assert ma.hz_to_mel_slaney(6400.0) == pytest.approx(15.0 + 27.0)
    hz = np.array([50.0, 999.0, 1001.0, 7000.0])
    np.testing.assert_allclose(ma.mel_to_hz_slaney(ma.hz_to_mel_slaney(hz)), hz)


def numpy_mel_power(y: np.ndarray) -> np.ndarray:
    """librosa's recipe written out: reflect-pad n_fft/2, periodic Hann, |rfft|^2, filterbank."""
    padded = np.pad(y.astype(np.float64), 256, mode="reflect")
    n_frames = 1 + len(y) // 256
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(512) / 512)
    frames = np.stack([padded[i * 256:i * 256 + 512] * window for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return ma.slaney_filterbank().astype(np.float64) @ power.T


def test_stft_framing_window_and_power_match_a_numpy_reference():
    rng = np.random.default_rng(0)
    y = (0.3 * rng.normal(size=16000 + 77)).astype(np.float32)
    ours = ma.mel_power(torch.from_numpy(y)).numpy()
    assert ours.shape == (96, 1 + len(y) // 256)
    np.testing.assert_allclose(ours, numpy_mel_power(y), rtol=1e-4, atol=1e-6)


def test_a_pure_sine_lands_in_the_right_band_with_the_right_energy():
    sr, amplitude = 16000, 0.5
    t = np.arange(3 * sr) / sr
    y = (amplitude * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)  # exactly FFT bin 32
    mel = ma.mel_power(torch.from_numpy(y)).numpy()[:, 50]  # a frame in the middle
    centres = ma.mel_to_hz_slaney(np.linspace(0.0, ma.hz_to_mel_slaney(8000.0), 98))[1:-1]
    assert int(np.argmax(mel)) == int(np.argmin(np.abs(centres - 1000.0)))
    # periodic Hann: |X[k]| = A N / 4 at the sine's bin, A N / 8 at both neighbours, 0 elsewhere
    power = {31: (amplitude * 512 / 8) ** 2, 32: (amplitude * 512 / 4) ** 2, 33: (amplitude * 512 / 8) ** 2}
    weights = ma.slaney_filterbank()
    expected = sum(weights[:, k].astype(np.float64) * p for k, p in power.items())
    np.testing.assert_allclose(mel, expected, rtol=1e-3, atol=1e-3)


def test_log_compression_rounds_through_float16_then_computes_in_float32():
    mel = torch.tensor([0.0, 1e-3, 1.2345678, 6.6, 100.0, 1e6])
    got = ma.log_compress(mel).numpy()
    # musicnn: float16 storage, then (numpy < 2 promotion) float32 arithmetic
    rounded = np.minimum(mel.numpy(), 65504).astype(np.float16).astype(np.float32)
    expected = np.log10(np.float32(10000) * rounded + np.float32(1))
    np.testing.assert_allclose(got, expected, rtol=3e-7)  # log10 of torch and numpy differ by an ulp
    assert np.isfinite(got).all() and got[0] == 0.0
    assert got[2] != np.float32(np.log10(10000 * 1.2345678 + 1))  # the float16 rounding is kept


def test_patches_cut_without_overlap_from_frame_zero():
    spec = torch.arange(96 * 600, dtype=torch.float32).reshape(96, 600)
    out = ma.patches(spec)
    assert out.shape == (600 // 187, 96, 187)
    assert torch.equal(out[1], spec[:, 187:374])
    short = ma.patches(spec[:, :50])
    assert short.shape == (1, 96, 187) and torch.equal(short[0, :, 50:100], spec[:, :50])
    capped = ma.patches(torch.zeros(96, 187 * 9), max_patches=3)
    assert capped.shape == (3, 96, 187)


def test_three_seconds_of_audio_give_one_187_frame_patch():
    # musicnn: n_frames = librosa.time_to_frames(3 s) + 1 = 187; 186 hops of 256 samples
    assert ma.PATCH_SAMPLES == 47616
    assert ma.log_mel(torch.zeros(ma.PATCH_SAMPLES)).shape == (96, 187)


def test_resampler_is_a_kaiser_sinc_that_keeps_a_tone():
    sr = 44100
    t = np.arange(sr) / sr
    y = torch.from_numpy((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    out = ma.kaiser_best_resampler(sr)(y)
    assert out.shape[0] == int(np.ceil(sr * 16000 / sr))
    t16 = np.arange(out.shape[0]) / 16000
    reference = 0.5 * np.sin(2 * np.pi * 440 * t16)
    assert np.abs(out.numpy()[2000:-2000] - reference[2000:-2000]).max() < 1e-3
