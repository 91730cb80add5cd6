"""Synthetic music tracks: drums, bass, chords and a lead line from a few style parameters.

``render_track`` turns a dict of style parameters (each in [0, 1], see ``AUDIO_PARAMS``)
into a waveform. What a genre changes is what a spectrogram shows:

- ``tempo`` (60-180 BPM), the drum pattern (``four_floor`` / ``backbeat`` / ``breakbeat``
  mix, ``drum_density``, ``swing``, ``hat_level``, ``drum_level``: none at all below 0.25);
- timbre: ``rolloff`` and ``odd_even`` shape the harmonic partial profile of every voice,
  ``distortion`` saturates the tonal part, ``brightness`` sets a low-pass cutoff
  (~300 Hz-19 kHz), ``harmonicity`` trades tonal voices against shaped noise;
- harmony: ``mode`` picks the scale (major ... whole-tone), ``chord_ext`` adds 7ths/9ths,
  ``register`` moves the voices by octaves;
- texture: ``note_density`` (lead notes per beat), ``attack`` (plucked vs pad), ``vibrato``,
  ``reverb``, and the levels of bass, pads and lead.

Synthesis is vectorised numpy (wavetables read at cumulative phase; drum hits added per
event, never per sample; filtering and reverb in one FFT pass per channel).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_PARAMS: tuple[str, ...] = (
    "tempo", "drum_level", "drum_density", "four_floor", "backbeat", "breakbeat", "swing",
    "hat_level", "brightness", "harmonicity", "rolloff", "odd_even", "distortion",
    "note_density", "register", "mode", "chord_ext", "attack", "bass_level", "vibrato",
    "reverb", "pad_level", "lead_level",
)

# scales as semitone offsets, ordered roughly from bright to dark/exotic
SCALES: tuple[tuple[int, ...], ...] = (
    (0, 2, 4, 5, 7, 9, 11),    # major
    (0, 2, 4, 7, 9),           # major pentatonic
    (0, 2, 4, 5, 7, 9, 10),    # mixolydian
    (0, 2, 3, 5, 7, 9, 10),    # dorian
    (0, 2, 3, 5, 7, 8, 10),    # natural minor
    (0, 3, 5, 6, 7, 10),       # blues
    (0, 2, 3, 5, 7, 8, 11),    # harmonic minor
    (0, 1, 3, 5, 7, 8, 10),    # phrygian
    (0, 2, 4, 6, 8, 10),       # whole tone
)
PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (1, 4, 0, 0), (0, 0, 3, 4), (5, 3, 0, 4),
                (0, 6, 5, 4), (0, 3, 0, 4))

_KICK = {  # 16-step patterns per style
    "four_floor": [1, 0, 0, 0] * 4,
    "backbeat": [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0],
    "breakbeat": [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0],
}
_SNARE = {
    "four_floor": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    "backbeat": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    "breakbeat": [0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1],
}
_HAT = {
    "four_floor": [0, 0, 1, 0] * 4,
    "backbeat": [1, 0, 1, 0] * 4,
    "breakbeat": [1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 0],
}
_TABLE_LEN = 2048
_TABLE_X = np.arange(_TABLE_LEN) / _TABLE_LEN


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast FFT size)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _wavetable(n_partials: int, rolloff: float, odd_even: float) -> np.ndarray:
    """One cycle of a harmonic tone: partial k has amplitude k^-slope, even ones scaled."""
    k = np.arange(1, max(1, n_partials) + 1)
    amp = k ** -(0.6 + 2.4 * rolloff)
    amp = np.where(k % 2 == 0, amp * (1.0 - 0.9 * odd_even), amp)
    table = (amp[:, None] * np.sin(2 * np.pi * k[:, None] * _TABLE_X[None, :])).sum(0)
    return table / (np.abs(table).max() + 1e-9)


def _voice(freq: np.ndarray, sr: int, table: np.ndarray, phase0: float = 0.0) -> np.ndarray:
    """Read a wavetable at the per-sample frequency ``freq`` [..., n] (Hz)."""
    phase = np.cumsum(freq / sr, axis=-1) + phase0
    idx = (phase * _TABLE_LEN).astype(np.int64) & (_TABLE_LEN - 1)
    return table[idx]


def _partials_for(f_max: float, sr: int, wanted: int) -> int:
    return int(max(1, min(wanted, 0.45 * sr / max(f_max, 1.0))))


def _midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=float) - 69.0) / 12.0)


def _drum_kits(sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    tk = np.arange(int(0.25 * sr)) / sr
    f = 45 + 110 * np.exp(-tk / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-tk / 0.12)
    ts = np.arange(int(0.18 * sr)) / sr
    snare = (0.8 * rng.standard_normal(ts.size) * np.exp(-ts / 0.06)
             + 0.5 * np.sin(2 * np.pi * 185 * ts) * np.exp(-ts / 0.04))
    th = np.arange(int(0.06 * sr)) / sr
    hat = np.diff(rng.standard_normal(th.size + 1)) * 0.5 * np.exp(-th / 0.012)
    return {"kick": kick, "snare": snare, "hat": hat}


def _drums(p: dict, n: int, sr: int, step: float, rng: np.random.Generator) -> np.ndarray:
    """Drum track [n]: a one-bar pattern sampled from the style mix, repeated with variation."""
    out = np.zeros(n + int(0.3 * sr))
    if p["drum_level"] < 0.25:
        return out[:n]
    w = np.array([p["four_floor"], p["backbeat"], p["breakbeat"]]) ** 2 + 1e-3
    w = w / w.sum()
    styles = ("four_floor", "backbeat", "breakbeat")
    kits = _drum_kits(sr, rng)
    n_steps = int(np.ceil(n / sr / step))
    dens = p["drum_density"]
    gains = {"kick": 1.0, "snare": 0.8, "hat": 0.25 + 0.6 * p["hat_level"]}
    # hi-hat subdivision follows the density: quarter notes, eighths or sixteenths
    hat_div = 4 if dens < 0.33 else (2 if dens < 0.66 else 1)
    hat_grid = (np.arange(16) % hat_div == 0).astype(float)
    for name, table in (("kick", _KICK), ("snare", _SNARE), ("hat", _HAT)):
        prob = sum(w[i] * np.asarray(table[s], dtype=float) for i, s in enumerate(styles))
        if name == "hat":
            prob = np.clip(0.5 * prob + 0.7 * hat_grid, 0.0, 1.0)
        else:
            prob = np.clip(prob + 0.3 * dens ** 2 * (1 - prob), 0.0, 1.0)  # ghost notes
        bar = rng.random(16) < prob
        hits = np.tile(bar, n_steps // 16 + 1)[:n_steps]
        flips = rng.random(n_steps) < 0.03 + 0.05 * dens
        hits = hits ^ (flips & (rng.random(n_steps) < prob[np.arange(n_steps) % 16] + 0.1))
        steps = np.nonzero(hits)[0]
        times = steps * step + (steps % 2 == 1) * p["swing"] * step * 0.45
        pos = (times * sr).astype(np.int64)
        vel = gains[name] * (0.75 + 0.25 * rng.random(pos.size))
        kern = kits[name]
        for q, v in zip(pos, vel):  # one slice-add per drum hit (events, not samples)
            if q < n:
                out[q:q + kern.size] += v * kern
    return out[:n] * (0.4 + 0.6 * p["drum_level"])


def _env_table(period_s: float, sr: int, att: float, dec: float) -> np.ndarray:
    """Attack/decay envelope over one period, sampled at ``sr`` (float32)."""
    tau = np.arange(int(np.ceil(period_s * sr)) + 2, dtype=np.float64) / sr
    return ((1 - np.exp(-tau / att)) * np.exp(-tau / dec)).astype(np.float32)


def _periodic(i: np.ndarray, period_s: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(period index, sample offset within the period) of every sample index ``i``."""
    k = (i / (period_s * sr)).astype(np.int64)
    off = np.maximum(i - (k * (period_s * sr)).astype(np.int64), 0)
    return k, off


def render_track(
    p: dict[str, float], sr: int, seconds: float, channels: int, rng: np.random.Generator
) -> np.ndarray:
    """Synthesise one track. ``p``: style parameters in [0, 1]. Returns float32 [n, channels]."""
    n = max(1, int(round(sr * seconds)))
    i = np.arange(n, dtype=np.int64)
    bpm = (60.0 + 120.0 * p["tempo"]) * (1.0 + 0.03 * rng.standard_normal())
    beat = 60.0 / bpm
    step = beat / 4
    bar = 4 * beat

    # --- harmony -------------------------------------------------------------------
    mode_i = int(np.clip(round(p["mode"] * (len(SCALES) - 1) + rng.normal(0, 0.5)), 0, len(SCALES) - 1))
    scale = np.array(SCALES[mode_i])
    ns = len(scale)
    root = 48 + int(rng.integers(0, 12)) + 12 * int(np.clip(round((p["register"] - 0.5) * 2.4), -1, 1))
    prog = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]

    def degree_midi(deg):
        deg = np.asarray(deg)
        return root + scale[deg % ns] + 12 * (deg // ns)

    n_tones = 3 + int(p["chord_ext"] > 0.45) + int(p["chord_ext"] > 0.8)
    chord_deg = np.array([[d + 2 * j for j in range(n_tones)] for d in prog])  # [4, tones]
    chord_midi = degree_midi(chord_deg) + 12                                      # [4, tones]
    bar_idx, _ = _periodic(i, bar, sr)
    chord_of_sample = bar_idx % 4

    n_partials = int(4 + 28 * (1 - p["rolloff"]))

    # pads / strummed chords: every voice, and its pan-weighted sum for stereo
    pad_hz = _midi_hz(chord_midi) * (1 + 0.002 * rng.standard_normal(n_tones))    # [4, tones]
    pad_table = _wavetable(_partials_for(pad_hz.max(), sr, n_partials), p["rolloff"], p["odd_even"])
    pan = np.linspace(-0.6, 0.6, n_tones)
    pad_sum = np.zeros(n, dtype=np.float32)
    pad_side = np.zeros(n, dtype=np.float32)
    for v in range(n_tones):
        voice = _voice(pad_hz[:, v][chord_of_sample], sr, pad_table, rng.random()).astype(np.float32)
        pad_sum += voice
        if channels > 1:
            pad_side += np.float32(pan[v]) * voice
    strum = beat * (0.5 if p["attack"] < 0.3 else (1.0 if p["attack"] < 0.6 else 4.0))
    _, off = _periodic(i, strum, sr)
    pad_env = _env_table(strum, sr, 0.003 + 0.25 * p["attack"] ** 2, 0.12 + 2.5 * p["attack"])[off]

    # lead line: a random walk on the scale, with rests
    rates = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    per_beat = rates[int(np.clip(p["note_density"] * len(rates) + rng.normal(0, 0.4), 0, len(rates) - 0.001))]
    note_dur = beat / per_beat
    n_notes = int(np.ceil(seconds / note_dur)) + 2
    walk = np.clip(np.cumsum(rng.integers(-2, 3, n_notes)), -ns, 2 * ns)
    lead_hz = _midi_hz(degree_midi(walk + ns) + 12)
    rest = rng.random(n_notes) < 0.15
    note_idx, off = _periodic(i, note_dur, sr)
    note_idx = np.minimum(note_idx, n_notes - 1)
    lead_freq = lead_hz[note_idx]
    if p["vibrato"] > 0.05:
        lead_freq = lead_freq * (1 + 0.012 * p["vibrato"] * np.sin((2 * np.pi * 5.5 / sr) * i))
    lead_table = _wavetable(_partials_for(lead_hz.max(), sr, n_partials), p["rolloff"], p["odd_even"])
    lead = _voice(lead_freq, sr, lead_table).astype(np.float32)
    lead_env = _env_table(note_dur, sr, 0.002 + 0.08 * p["attack"],
                          0.08 + 1.2 * p["attack"] * note_dur / 0.5)[off] * ~rest[note_idx]

    # bass: chord root two octaves down, on beats or eighths
    b_div = beat / (1 + int(p["drum_density"] > 0.55))
    _, off = _periodic(i, b_div, sr)
    bass = _voice(_midi_hz(chord_midi[:, 0] - 24)[chord_of_sample], sr, _wavetable(6, 0.7, 0.3)).astype(np.float32)
    bass *= _env_table(b_div, sr, 0.005, 0.1 + 0.5 * p["attack"])[off]

    h = np.float32(p["harmonicity"])
    pad_level = np.float32((0.15 + 0.6 * p["pad_level"]) / n_tones)
    lead_level = np.float32(0.15 + 0.6 * p["lead_level"])
    bass_level = np.float32(0.05 + 0.95 * p["bass_level"])
    drive = np.float32(1.0 + 16.0 * p["distortion"])
    lead_part = lead_level * lead * lead_env + bass_level * bass
    # noise texture following the rhythm of the lead
    noise_gain = (1 - h) * np.float32(0.5)
    noise = rng.standard_normal(n, dtype=np.float32) * (np.float32(0.35) + np.float32(0.65) * lead_env)

    fc = 300.0 * 2.0 ** (6.0 * p["brightness"])
    rt = 0.15 + 2.2 * p["reverb"]
    wet = 0.05 + 0.9 * p["reverb"] ** 1.5
    ir_len = max(1, int(min(rt, 0.9 * seconds) * sr))
    nfft = _fast_len(n)  # circular: the last reverb tail wraps to the start, harmless
    f_axis = np.fft.rfftfreq(nfft, 1.0 / sr).astype(np.float32)
    lp = np.float32(1.0) / np.sqrt(np.float32(1.0) + (f_axis / np.float32(fc)) ** 4)
    drum_lp = np.float32(1.0) / np.sqrt(np.float32(1.0) + (f_axis / np.float32(fc * 3.0)) ** 2)
    ir = rng.standard_normal(ir_len) * np.exp(-np.arange(ir_len) / (sr * rt / 6.9))
    ir *= 1.0 / (np.sqrt((ir ** 2).sum()) + 1e-9)
    room = np.complex64(wet) * np.fft.rfft(ir.astype(np.float32), nfft)
    drums = np.fft.rfft(_drums(p, n, sr, step, rng).astype(np.float32), nfft) * drum_lp
    chans = []
    for c in range(channels):
        side = np.float32(1.0 if c == 0 else -1.0)
        pads = pad_sum + side * pad_side if channels > 1 else pad_sum
        tonal = pad_level * pads * pad_env + lead_part
        tonal = np.tanh(drive * np.float32(0.8) * tonal) / np.tanh(drive)
        mix = h * tonal + noise_gain * noise * (1 + np.float32(0.15) * side)
        # the second channel hears the room ~11 ms later (decorrelated stereo reverb)
        r = room if c == 0 else room * np.exp(np.complex64(-2j * np.pi * 0.011) * f_axis)
        spec = (np.fft.rfft(mix, nfft) * lp + drums) * (1.0 + r)
        chans.append(np.fft.irfft(spec, nfft)[:n].astype(np.float32))
    y = np.stack(chans, axis=1)
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) + 1e-9
    # loudness: heavier, drum-driven styles are mastered louder
    loud_db = -23.0 + 7.0 * p["distortion"] + 3.0 * (p["drum_level"] >= 0.25) + rng.uniform(-1.5, 1.5)
    y *= np.float32(10 ** (loud_db / 20) / rms)
    peak = float(np.abs(y).max())
    if peak > 0.98:
        y *= np.float32(0.98 / peak)
    return y


_SUBTYPE = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
            "mp3": ("MP3", "MPEG_LAYER_III")}


_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, unreflected, init 0) via zlib's reflected CRC-32."""
    c = zlib.crc32(page.translate(_BITREV), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{c:032b}"[::-1], 2)


def _fix_ogg_serial(data: bytes, serial: int) -> bytes:
    """Set every page's stream serial number (libsndfile picks a random one) and re-CRC,
    so that equal audio gives byte-identical files."""
    out = bytearray(data)
    pos = 0
    while pos + 27 <= len(out) and out[pos:pos + 4] == b"OggS":
        n_seg = out[pos + 26]
        size = 27 + n_seg + sum(out[pos + 27:pos + 27 + n_seg])
        out[pos + 14:pos + 18] = struct.pack("<I", serial)
        out[pos + 22:pos + 26] = b"\0\0\0\0"
        out[pos + 22:pos + 26] = struct.pack("<I", _ogg_crc(bytes(out[pos:pos + size])))
        pos += size
    return bytes(out)


def write_audio(path: str | Path, data: np.ndarray, sr: int, fmt: str) -> None:
    """Write ``data`` [n, channels] as ``fmt`` (wav, flac, ogg = Vorbis, mp3) with soundfile.

    Deterministic: the same data gives the same bytes (Ogg serial numbers are fixed).
    """
    if fmt not in _SUBTYPE:
        raise ValueError(f"unsupported synthetic audio format {fmt!r}; use one of {sorted(_SUBTYPE)}")
    major, subtype = _SUBTYPE[fmt]
    if fmt != "ogg":
        sf.write(str(path), data, sr, format=major, subtype=subtype)
        return
    buf = io.BytesIO()
    sf.write(buf, data, sr, format=major, subtype=subtype)
    serial = zlib.crc32(Path(path).name.encode("utf-8"))
    Path(path).write_bytes(_fix_ogg_serial(buf.getvalue(), serial))
