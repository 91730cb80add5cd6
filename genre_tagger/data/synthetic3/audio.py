"""Third-family tracks: songs in sections whose arrangement carries the genre evidence.

A track is a sequence of sections (intro, verse, chorus, bridge, outro; one of a few song
forms). Each section plays a bass-and-lead line (additive harmonics: a ``decay`` of the
harmonic amplitudes and a ``formant`` peak make the timbre), a drum pattern of 16 steps
(kick, snare, hat) at a ``tempo``, through a soft clipper (``drive``) with vinyl-like
``crackle``. By default a section plays the artist's arrangement; a genre of the album with
audio evidence replaces one part of it (its ``kind``: the rhythm, the timbre or the drive)
in the sections it lives in (``sections``), each bar with a chance set by the strength. So
the evidence sits in some sections only, and a short crop may miss it.
"""

from __future__ import annotations

import numpy as np

from genre_tagger.data.synthetic3.world import SECTIONS

SR = 16000
FORMS = (  # (section, share of the track)
    (("intro", 0.1), ("verse", 0.2), ("chorus", 0.2), ("verse", 0.2), ("chorus", 0.2), ("outro", 0.1)),
    (("intro", 0.15), ("verse", 0.25), ("chorus", 0.2), ("bridge", 0.15), ("chorus", 0.25)),
    (("verse", 0.2), ("chorus", 0.15), ("verse", 0.2), ("chorus", 0.15), ("bridge", 0.15), ("outro", 0.15)),
)
ENERGY = {"intro": 0.5, "verse": 0.8, "chorus": 1.0, "bridge": 0.7, "outro": 0.45}
KIND_KEYS = {"rhythm": ("tempo", "pattern"), "timbre": ("decay", "formant"), "drive": ("drive", "crackle")}
SCALE = np.array([0, 2, 3, 5, 7, 8, 10])  # semitones of a minor scale


def _one_shots(rng: np.random.Generator) -> list[np.ndarray]:
    """Kick (falling sine), snare (mid noise burst), hat (bright short noise)."""
    t = np.arange(int(0.18 * SR)) / SR
    kick = np.sin(2 * np.pi * (45 + 70 * np.exp(-t * 30)) * t) * np.exp(-t * 18)
    noise = rng.standard_normal(len(t))
    snare = (noise - np.concatenate([[0.0], noise[:-1]]) * 0.5) * np.exp(-t * 25) * 0.6
    hat = np.diff(noise, prepend=0.0)[: int(0.04 * SR)] * np.exp(-t[: int(0.04 * SR)] * 90) * 0.3
    return [kick, snare, hat]


def _drums(params: dict, n: int, offset: float, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n + int(0.2 * SR))
    shots = _one_shots(rng)
    step = 60.0 / params["tempo"] / 4
    for s in range(int((n / SR) / step) + 1):
        at = int(s * step * SR)
        for row, shot in zip(params["pattern"], shots):
            if row[(s + int(offset)) % 16] and at < n:
                out[at:at + len(shot)] += shot * rng.uniform(0.7, 1.0)
    return out[:n]


def _line(params: dict, n: int, root: float, rng: np.random.Generator) -> np.ndarray:
    """A melody of one note per beat over a bass an octave below, with the section's timbre."""
    beat = 60.0 / params["tempo"]
    notes = root * 2 ** (SCALE[rng.integers(len(SCALE), size=int(n / SR / beat) + 2)] / 12)
    freq = np.repeat(notes, int(beat * SR) + 1)[:n]
    phase = 2 * np.pi * np.cumsum(freq) / SR
    bass_phase = 2 * np.pi * np.cumsum(np.repeat(notes[::4], 4 * int(beat * SR) + 4)[:n] / 2) / SR
    wave = 0.6 * np.sin(bass_phase)
    for k in range(1, 24):
        top = k * freq.max()
        if top >= SR / 2:
            break
        gain = k ** -params["decay"] * (1 + 3 * np.exp(-0.5 * (np.log(k * root * 1.3 / params["formant"]) / 0.3) ** 2))
        wave += gain * np.sin(k * phase)
    envelope = 0.6 + 0.4 * np.exp(-((np.arange(n) / SR) % beat) * 6)
    return wave * envelope / (np.abs(wave).max() + 1e-9)


def _segment(params: dict, seconds: float, energy: float, root: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SR)
    wave = 0.5 * _line(params, n, root, rng) + energy * _drums(params, n, rng.integers(16), rng)
    wave = np.tanh(params["drive"] * wave / 2) / np.tanh(params["drive"] / 2)
    clicks = rng.random(n) < params["crackle"] / SR
    wave += clicks * rng.uniform(-0.8, 0.8, n) + 0.01 * rng.standard_normal(n)
    return energy * wave


def _bars(artist: dict, evidence: list[tuple[dict, float]], section: str, n_bars: int,
          rng: np.random.Generator) -> list[dict]:
    """The arrangement of each bar of a section: the artist's, with the parts of the album's
    genres that live in this section swapped in, each bar with probability = strength."""
    here = [(e, s) for e, s in evidence if SECTIONS.index(section) in e["sections"]]
    bars = []
    for _ in range(n_bars):
        params = dict(artist)
        for e, strength in (here[i] for i in rng.permutation(len(here))):
            if rng.random() < strength:
                params.update({key: e[key] for key in KIND_KEYS[e["kind"]]})
        bars.append(params)
    return bars


def render_track(artist: dict, evidence: list[tuple[dict, float]], seconds: float,
                 rng: np.random.Generator) -> np.ndarray:
    """``artist``: the default arrangement; ``evidence``: ``(genre audio parameters, strength in
    [0, 1])`` for the album's genres that speak through audio -> float32 mono wave at ``SR``."""
    form = FORMS[rng.integers(len(FORMS))]
    root = float(55 * 2 ** (rng.integers(12) / 12) * 2)
    pieces = []
    for section, share in form:
        length = share * seconds
        # bars of ~2 s (whatever the tempo), so that a bar's arrangement is heard long enough
        n_bars = max(1, int(round(length / 2.0)))
        for params in _bars(artist, evidence, section, n_bars, rng):
            pieces.append(_segment(params, length / n_bars, ENERGY[section], root, rng))
    wave = np.concatenate(pieces)
    return (0.9 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)
