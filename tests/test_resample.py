"""The polyphase resampler computes torchaudio's Resample, zero taps skipped."""

from __future__ import annotations

import pytest
import torch
import torchaudio

from genre_tagger.data.audio.resample import PolyphaseResampler


@pytest.mark.parametrize("source_rate", [44100, 48000, 22050, 11025, 8000, 44056])
def test_it_matches_torchaudio_on_any_rate_and_length(source_rate):
    waves = torch.randn(3, source_rate // 4 + 7, generator=torch.Generator().manual_seed(source_rate))
    expected = torchaudio.transforms.Resample(source_rate, 16000)(waves)
    got = PolyphaseResampler(source_rate, 16000)(waves)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_it_reads_only_the_taps_some_phase_uses_and_passes_equal_rates_through():
    resampler = PolyphaseResampler(44100, 16000)
    assert sum(part.numel() for _, part in resampler.blocks) < 0.3 * 160 * resampler.taps
    waves = torch.randn(2, 100)
    assert PolyphaseResampler(16000, 16000)(waves) is waves


def test_a_tone_keeps_its_pitch():
    t = torch.arange(44100) / 44100
    tone = torch.sin(2 * torch.pi * 440 * t)
    out = PolyphaseResampler(44100, 16000)(tone[None])[0]
    assert out.shape == (16000,)
    peak = int(torch.fft.rfft(out).abs().argmax())  # 1 Hz bins over one second
    assert peak == 440
