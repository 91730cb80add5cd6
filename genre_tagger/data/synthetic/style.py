"""The latent "world" behind the synthetic catalog: how each genre shows in each modality.

Every genre has an evidence profile: a strength in [0, 1] per modality (audio, image,
text). A profile is drawn per genre from a fixed mix: some genres are clearest in audio,
some in text, some in covers, some in two or all three, and some are weak everywhere
(findable only through their parent and the labels they co-occur with). Weak evidence
(0-0.3) exists everywhere.

Each genre also has a direction in a small latent style space per modality: audio (the
synthesiser's ``AUDIO_PARAMS``), cover (``COVER_PARAMS``) and text (signature words).
Top-level genres get hand-set hints on top of a random direction (Metal is distorted and
dark, New Age has no drums and long reverb, ...) so the demo sounds and looks plausible.

An album's latent style is the sum of its true genres' directions scaled by their
strengths, plus a per-artist offset (shared by the artist's albums) and per-album noise;
each track adds its own noise; parameters are the sigmoid of the latent.

The world is fixed (seeded by ``WORLD_SEED`` and the genre's name, not by the catalog's
seed), so catalogs with different seeds are samples of the same world: a model trained
on one catalog can tag another.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from genre_tagger.data.synthetic.audio_synth import AUDIO_PARAMS
from genre_tagger.data.synthetic.cover_synth import COVER_PARAMS
from genre_tagger.data.synthetic.text_synth import signature_words
from genre_tagger.data.synthetic.vocabulary import Vocabulary, build_vocabulary

WORLD_SEED = 20240917
MODALITY_KEYS = ("audio", "image", "text")

# Evidence profiles: which modalities carry a genre strongly, with their shares of genres.
PROFILES: tuple[tuple[str, float], ...] = (
    ("audio", 0.22), ("text", 0.22), ("image", 0.08), ("audio+text", 0.16),
    ("audio+image", 0.07), ("image+text", 0.07), ("audio+image+text", 0.06), ("", 0.12),
)


@dataclass(frozen=True)
class Calibration:
    """The generator's difficulty knobs (see benchmarks/synth_proxy.py for their effect)."""

    strong: tuple[float, float] = (0.55, 1.0)   # strength range of a genre's strong modalities
    weak: tuple[float, float] = (0.0, 0.3)      # ... and of its other modalities
    top_strength: tuple = (0.8, 0.45, 0.7)      # strengths of top-level genres (audio, image, text)
    audio_scale: float = 1.0                    # genre direction size, audio latent (logits)
    cover_scale: float = 1.5
    audio_artist: float = 0.6                   # per-artist offset (std, logits)
    cover_artist: float = 0.6
    audio_album: float = 0.5                    # per-album noise
    cover_album: float = 0.6
    audio_track: float = 0.3                    # per-track noise
    text_noise_weight: float = 0.5              # weight of random pool words vs genre words
    text_artist_share: float = 0.12             # share of descriptive slots for artist pet words
    text_descriptive_share: float = 0.5         # share of sentences that describe the music
    text_name_rate: float = 0.12                # chance a review names one of its genres
    text_wrong_name_rate: float = 0.05          # ... names a random genre
    text_sound_sentences: float = 1.5           # mean sentences per review on the album's own sound
    text_sound_error: float = 0.1               # chance such a sentence names the opposite trait


CALIBRATION = Calibration()

# How much genres differ along each synthesiser parameter (scales the random part of a
# genre's audio direction): large for what a spectrogram shows plainly (tempo, drums,
# brightness, noisiness, distortion, envelopes), small for subtle ones (mode, vibrato).
AUDIO_SALIENCE: dict[str, float] = {
    "tempo": 1.4, "drum_level": 1.3, "drum_density": 1.3, "four_floor": 1.0, "backbeat": 0.8,
    "breakbeat": 0.8, "swing": 0.5, "hat_level": 1.0, "brightness": 1.4, "harmonicity": 1.3,
    "rolloff": 0.9, "odd_even": 0.6, "distortion": 1.3, "note_density": 1.1, "register": 1.1,
    "mode": 0.6, "chord_ext": 0.6, "attack": 1.2, "bass_level": 1.1, "vibrato": 0.5,
    "reverb": 1.2, "pad_level": 0.8, "lead_level": 0.8,
}

# Hand-set hints for top-level genres, in logits of the named parameters.
_AUDIO_HINTS: dict[str, dict[str, float]] = {
    "Pop": {"mode": -1.0, "distortion": -0.5, "backbeat": 0.8, "lead_level": 0.8},
    "Rock": {"distortion": 1.8, "backbeat": 2.0, "drum_level": 1.5, "odd_even": 0.5},
    "Dance & Electronic": {"four_floor": 3.0, "drum_level": 2.0, "tempo": 0.8, "bass_level": 1.5,
                           "odd_even": 1.0, "vibrato": -1.0, "attack": -0.5},
    "Jazz": {"swing": 2.5, "chord_ext": 2.5, "distortion": -2.0, "hat_level": 1.0, "mode": 0.0,
             "drum_level": 0.5},
    "R&B": {"chord_ext": 1.5, "tempo": -0.6, "bass_level": 1.2, "distortion": -1.0, "swing": 0.6},
    "Metal": {"distortion": 3.0, "tempo": 1.0, "drum_level": 2.0, "drum_density": 1.5,
              "brightness": 0.5, "harmonicity": -0.8, "mode": 1.2, "reverb": -0.5},
    "Rap & Hip-Hop": {"tempo": -1.0, "drum_level": 2.5, "backbeat": 1.5, "bass_level": 2.0,
                      "lead_level": -1.0, "swing": 1.0, "note_density": -0.5},
    "Folk": {"distortion": -2.5, "attack": -1.5, "brightness": -0.5, "drum_level": -1.5,
             "rolloff": 0.6},
    "Hardcore & Punk": {"tempo": 2.0, "distortion": 2.5, "drum_density": 1.5, "brightness": 1.0,
                        "reverb": -1.5, "backbeat": 1.0},
    "Country": {"attack": -1.5, "backbeat": 1.0, "mode": -1.5, "vibrato": 1.0, "distortion": -1.5},
    "Blues": {"mode": 0.6, "swing": 1.5, "tempo": -0.8, "distortion": 0.5, "note_density": -0.5},
    "Latin Music": {"breakbeat": 1.5, "tempo": 0.5, "note_density": 1.0, "hat_level": 0.8},
    "World Music": {"mode": 2.0, "breakbeat": 1.0, "rolloff": -0.5, "drum_level": -0.5},
    "Classical": {"drum_level": -3.0, "harmonicity": 2.0, "distortion": -2.0, "attack": 1.0,
                  "reverb": 1.5, "pad_level": 1.0},
    "Christian & Gospel": {"chord_ext": 0.6, "reverb": 1.0, "mode": -1.0, "pad_level": 1.0},
    "Soundtracks": {"drum_level": -1.5, "reverb": 1.5, "pad_level": 1.5, "attack": 1.5},
    "New Age": {"drum_level": -3.0, "reverb": 2.5, "attack": 2.0, "tempo": -1.5,
                "note_density": -1.5, "distortion": -2.0},
    "Reggae": {"backbeat": 1.0, "tempo": -1.0, "bass_level": 2.0, "swing": 0.5, "hat_level": -0.5},
    "Easy Listening": {"distortion": -2.0, "tempo": -0.5, "pad_level": 1.0, "reverb": 1.0,
                       "drum_level": -0.5},
    "Broadway & Vocalists": {"vibrato": 1.5, "reverb": 0.5, "lead_level": 1.0, "drum_level": -0.5},
    "Children's Music": {"mode": -2.0, "tempo": 0.5, "distortion": -2.0, "note_density": 0.5,
                         "brightness": 0.5},
}
# cover hints: "hue" is a hue angle in [0, 1) (turned into hue_x / hue_y)
_COVER_HINTS: dict[str, dict[str, float]] = {
    "Metal": {"value": -2.0, "saturation": -1.5, "contrast": 1.0, "texture": 1.0},
    "Classical": {"saturation": -1.0, "gradient": 1.0, "n_shapes": -1.5, "blur": 0.5, "hue": 0.1},
    "Dance & Electronic": {"saturation": 2.0, "value": 0.5, "polys": 1.0, "lines": 1.0, "hue": 0.8},
    "Children's Music": {"saturation": 2.0, "value": 1.5, "circles": 1.5, "hue": 0.15},
    "New Age": {"blur": 2.0, "gradient": 2.0, "value": 0.5, "n_shapes": -1.0, "hue": 0.5},
    "Country": {"hue": 0.08, "saturation": -0.5, "texture": 0.5},
    "Reggae": {"hue": 0.2, "saturation": 1.5, "layout": 1.0},
    "Hardcore & Punk": {"contrast": 2.0, "texture": 1.5, "lines": 1.0, "hue": 0.0},
    "Jazz": {"rects": 1.5, "value": -0.5, "hue": 0.6, "title_bar": 1.0},
    "Rap & Hip-Hop": {"value": -1.0, "title_bar": 1.5, "contrast": 1.0},
    "Soundtracks": {"value": -0.8, "gradient": 1.0, "blur": 0.8},
    "Pop": {"saturation": 0.8, "value": 0.8, "hue": 0.9},
}


@dataclass(frozen=True)
class GenreStyle:
    """One genre's evidence: strengths per modality and its latent directions/words."""

    strength: dict[str, float]
    audio: np.ndarray   # [len(AUDIO_PARAMS)] logits, unit-ish scale
    cover: np.ndarray   # [len(COVER_PARAMS)]
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    profile: str


@dataclass(frozen=True)
class World:
    vocab: Vocabulary
    styles: tuple[GenreStyle, ...]   # aligned with vocab.labels
    calibration: Calibration


def _label_rng(label: str, salt: int) -> np.random.Generator:
    return np.random.default_rng([WORLD_SEED, salt, zlib.crc32(label.encode("utf-8"))])


def _hinted(vec: np.ndarray, names: tuple[str, ...], hints: dict[str, float]) -> np.ndarray:
    vec = 0.6 * vec
    for key, val in hints.items():
        if key == "hue":
            vec[names.index("hue_x")] += 2.0 * np.cos(2 * np.pi * val)
            vec[names.index("hue_y")] += 2.0 * np.sin(2 * np.pi * val)
        else:
            vec[names.index(key)] += val
    return vec


def _genre_style(label: str, vocab: Vocabulary, cal: Calibration) -> GenreStyle:
    rng = _label_rng(label, 1)
    is_top = vocab.parent.get(label) is None
    names = [n for n, _ in PROFILES]
    probs = np.array([p for _, p in PROFILES])
    profile = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    strong = set(profile.split("+")) - {""}
    strength = {}
    for m in MODALITY_KEYS:
        lo, hi = cal.strong if m in strong else cal.weak
        strength[m] = float(rng.uniform(lo, hi))
    if is_top:
        profile = "top"
        strength = {m: float(np.clip(s + rng.normal(0, 0.1), 0, 1))
                    for m, s in zip(MODALITY_KEYS, cal.top_strength)}
    audio = rng.standard_normal(len(AUDIO_PARAMS)) * np.array([AUDIO_SALIENCE[k] for k in AUDIO_PARAMS])
    cover = rng.standard_normal(len(COVER_PARAMS))
    if is_top:
        audio = _hinted(audio, AUDIO_PARAMS, _AUDIO_HINTS.get(label, {}))
        cover = _hinted(cover, COVER_PARAMS, _COVER_HINTS.get(label, {}))
    adj, noun = signature_words(label, vocab.top_of(label), _label_rng(label, 2))
    return GenreStyle(strength=strength, audio=audio, cover=cover, adjectives=tuple(adj),
                      nouns=tuple(noun), profile=profile)


@lru_cache(maxsize=8)
def build_world(n_labels: int = 250, calibration: Calibration = CALIBRATION) -> World:
    vocab = build_vocabulary(n_labels)
    styles = tuple(_genre_style(label, vocab, calibration) for label in vocab.labels)
    return World(vocab=vocab, styles=styles, calibration=calibration)
