"""Rendering one album of the second family: audio (numpy), cover (numpy -> PNG), reviews."""

from __future__ import annotations

import colorsys

import numpy as np

SR = 16000


def _noise_band(rng: np.random.Generator, n: int, centre: float, width: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum *= np.exp(-0.5 * (np.log(np.maximum(freqs, 1.0) / centre) / width) ** 2)
    band = np.fft.irfft(spectrum, n)
    return band / (np.abs(band).max() + 1e-9)


def _component(evidence: dict, rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    kind = evidence["kind"]
    if kind == "pulse":  # onset periodicity: decaying noise bursts at the genre's rate
        phase = (t * evidence["rate"] + rng.random()) % 1.0
        return _noise_band(rng, n, float(np.exp(rng.uniform(np.log(400), np.log(4000)))), 1.0) * np.exp(-phase * 25)
    if kind == "band":  # spectral shape: resonant noise band at the genre's centre
        return _noise_band(rng, n, evidence["centre"], 0.12) * 0.8
    if kind == "tremolo":  # modulation rate over a random pitch
        pitch = float(np.exp(rng.uniform(np.log(150), np.log(1500))))
        return np.sin(2 * np.pi * pitch * t) * (0.5 + 0.5 * np.sin(2 * np.pi * evidence["mod"] * t)) * 0.7
    # sections: loudness dynamics, loud and quiet halves of the genre's period, over random noise colour
    gate = ((t / evidence["period"] + rng.random()) % 1.0) < 0.5
    return _noise_band(rng, n, float(np.exp(rng.uniform(np.log(300), np.log(3000)))), 0.8) * gate


def render_audio(evidence: list[tuple[dict, float]], rng: np.random.Generator, seconds: float) -> np.ndarray:
    """``evidence``: ``(parameters, strength)`` of the genre and distractor components -> float32 wave."""
    n = int(seconds * SR)
    white = np.fft.rfft(rng.standard_normal(n))
    tilt = rng.uniform(0.3, 1.2)
    base = np.fft.irfft(white / np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0) ** (tilt / 2), n)
    wave = 0.5 * base / (np.abs(base).max() + 1e-9)
    for params, strength in evidence:
        wave += strength * _component(params, rng, n)
    return (0.8 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def _rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value))


def _motif(canvas: np.ndarray, evidence: dict, alpha: float, rng: np.random.Generator) -> None:
    size = canvas.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    kind = evidence["kind"]
    colour = _rgb(rng.random(), rng.uniform(0.4, 1), rng.uniform(0.4, 1))
    if kind == "stripes":  # gradient orientation carries the genre; colour is random
        projected = xx * np.cos(evidence["angle"]) + yy * np.sin(evidence["angle"])
        mask = (np.sin(projected / 2.5) > 0).astype(float)
    elif kind == "patch":  # a blob of the genre's hue, anywhere
        colour = _rgb(evidence["hue"], rng.uniform(0.6, 1), rng.uniform(0.6, 1))
        cy, cx, r = rng.uniform(0.2, 0.8) * size, rng.uniform(0.2, 0.8) * size, rng.uniform(0.15, 0.35) * size
        mask = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(float)
    elif kind == "grid":  # a lattice with the genre's pitch
        pitch = evidence["pitch"]
        mask = (((yy % pitch) < 1.5) | ((xx % pitch) < 1.5)).astype(float)
    else:  # dots of the genre's radius on a random lattice
        step = evidence["radius"] * 4
        oy, ox = rng.integers(step), rng.integers(step)
        mask = ((((yy + oy) % step - step / 2) ** 2 + ((xx + ox) % step - step / 2) ** 2) < evidence["radius"] ** 2)
        mask = mask.astype(float)
    mask *= alpha
    canvas[:] = canvas * (1 - mask[..., None]) + colour * mask[..., None]


def render_cover(evidence: list[tuple[dict, float]], background: tuple[float, float], rng: np.random.Generator,
                 size: int = 128) -> np.ndarray:
    """Artist background (hue, value) + motifs at opacity ``strength`` -> uint8 ``[size, size, 3]``."""
    top = _rgb(background[0], rng.uniform(0.2, 0.7), background[1])
    bottom = _rgb(background[0] + rng.uniform(-0.15, 0.15), rng.uniform(0.2, 0.7), rng.uniform(0.2, 0.9))
    ramp = np.linspace(0, 1, size)[:, None, None]
    canvas = top * (1 - ramp) + bottom * ramp + rng.normal(0, 0.04, (size, size, 3))
    canvas = np.broadcast_to(canvas, (size, size, 3)).copy()
    for params, strength in evidence:
        _motif(canvas, params, float(np.clip(strength, 0, 1)), rng)
    return (np.clip(canvas, 0, 1) * 255).astype(np.uint8)


def render_review(keywords: list[tuple[tuple[str, ...], float]], pet_words: list[str], filler: list[str],
                  rng: np.random.Generator, words: int) -> str:
    """Zipfian filler, artist pet words, and each genre's rare keywords ~ Poisson(strength) times."""
    ranks = np.arange(1, len(filler) + 1)
    probs = 1.0 / ranks
    text = list(rng.choice(filler, size=words, p=probs / probs.sum()))
    for _ in range(rng.poisson(3)):
        text.insert(int(rng.integers(len(text) + 1)), pet_words[rng.integers(len(pet_words))])
    for genre_words, strength in keywords:
        for _ in range(rng.poisson(strength)):
            text.insert(int(rng.integers(len(text) + 1)), genre_words[rng.integers(len(genre_words))])
    sentences, start = [], 0
    while start < len(text):
        end = start + int(rng.integers(6, 14))
        sentences.append(" ".join(text[start:end]).capitalize() + ".")
        start = end
    return " ".join(sentences)
