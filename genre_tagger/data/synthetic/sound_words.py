"""Sentences in which a review says what the album itself sounds like.

Real reviews and captions describe the record's own sound ("a breakneck, fuzzed-out
record", "cavernous, drumless pads"), not only its genres. Here a reviewer hears the
album's latent style (``AlbumPlan.audio_z``: its genres' directions + the artist's offset +
the album's own noise, in logits of the synthesiser parameters) and names the traits that
stand out most: a parameter is noticed when its logit is far from 0 (the synthesiser's
middle), with probability growing with that distance, and named with a mild word or, past
``STRONG``, a strong one. Now and then the reviewer hears it wrong (the opposite word).

Because the words follow the album's latent rather than its genres alone, two albums of the
same genres read differently when they sound different: what text-to-music search can
use beyond genre scores. The words are distinct from the genre signature words and the
noise pool (``text_synth``).
"""

from __future__ import annotations

import re

import numpy as np

from genre_tagger.data.synthetic.audio_synth import AUDIO_PARAMS
from genre_tagger.data.synthetic.text_synth import finished_sentence

# parameter: ((low mild, low strong), (high mild, high strong)); each a tuple of words
SOUND_WORDS: dict[str, tuple] = {
    "tempo": ((("slow", "unhurried"), ("crawling", "funereal")),
              (("brisk", "uptempo"), ("breakneck", "frenetic"))),
    "drum_level": ((("softly-drummed", "lightly-drummed"), ("drumless", "beatless")),
                   (("percussive", "drum-forward"), ("drum-heavy", "pounding"))),
    "distortion": ((("clean", "clean-toned"), ("pristine", "spotless")),
                   (("overdriven", "gritty-toned"), ("fuzzed-out", "saturated"))),
    "brightness": ((("mellow-toned", "muted"), ("muffled", "submerged")),
                   (("bright", "crisp-toned"), ("trebly", "piercing"))),
    "reverb": ((("dry", "close-miked"), ("bone-dry", "deadened")),
               (("roomy", "echoing"), ("cavernous", "reverberant"))),
    "note_density": ((("spacious", "uncluttered"), ("minimal", "barebones")),
                     (("busy", "bustling"), ("flurrying", "cluttered"))),
    "bass_level": ((("bass-light", "lean"), ("thin", "bassless")),
                   (("bassy", "low-slung"), ("bass-heavy", "boomy"))),
    "harmonicity": ((("hissy", "noisy-edged"), ("noise-drenched", "static-laden")),
                    (("tuneful", "melodic"), ("sweet-toned", "singing"))),
    "register": ((("low-pitched", "deep-voiced"), ("subterranean", "rumbling")),
                 (("high-pitched", "airy"), ("stratospheric", "piping"))),
}
NOTICED = 0.75   # |logit| below this: unremarkable, never named
STRONG = 2.0     # |logit| above this: a strong word

SOUND_SENTENCES = (
    "Sonically it is {a}.",
    "The overall sound is {a} and {b}.",
    "It sounds {a}, even {b} at times.",
    "Expect a {a}, {b} sound.",
    "The mix is {a} throughout.",
    "Production-wise, everything is {a}.",
    "What stands out is how {a} it all is.",
    "It is a {a} and {b} listen.",
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARAM_INDEX = {name: AUDIO_PARAMS.index(name) for name in SOUND_WORDS}


def sound_traits(audio_z: np.ndarray, k: int, error_rate: float, rng: np.random.Generator) -> list[str]:
    """Up to ``k`` words for the album's most noticeable traits (``audio_z [len(AUDIO_PARAMS)]``)."""
    names = [n for n in SOUND_WORDS if abs(audio_z[_PARAM_INDEX[n]]) >= NOTICED]
    if not names:
        return []
    weight = np.array([abs(audio_z[_PARAM_INDEX[n]]) - NOTICED + 0.25 for n in names])
    picks = rng.choice(len(names), size=min(k, len(names)), replace=False, p=weight / weight.sum())
    words = []
    for i in picks:
        z = float(audio_z[_PARAM_INDEX[names[i]]])
        high = (z > 0) != bool(rng.random() < error_rate)
        options = SOUND_WORDS[names[i]][int(high)][int(abs(z) >= STRONG)]
        words.append(options[int(rng.integers(len(options)))])
    return words


def sound_sentences(audio_z: np.ndarray, mean_count: float, error_rate: float,
                    rng: np.random.Generator) -> list[str]:
    """Poisson(``mean_count``) sentences naming the album's noticeable traits (may be none)."""
    out = []
    for _ in range(int(rng.poisson(mean_count))):
        template = SOUND_SENTENCES[int(rng.integers(len(SOUND_SENTENCES)))]
        words = sound_traits(audio_z, 2 if "{b}" in template else 1, error_rate, rng)
        if len(words) < (2 if "{b}" in template else 1):
            continue
        out.append(finished_sentence(template.format(a=words[0], b=words[-1])))
    return out


def add_sound_sentences(reviews: list[str], audio_z: np.ndarray, mean_count: float, error_rate: float,
                        rng: np.random.Generator) -> list[str]:
    """Each review with its sound sentences inserted at random sentence boundaries."""
    if mean_count <= 0:
        return list(reviews)
    out = []
    for review in reviews:
        sentences = _SENTENCE_END.split(review)
        for extra in sound_sentences(audio_z, mean_count, error_rate, rng):
            sentences.insert(int(rng.integers(len(sentences) + 1)), extra)
        out.append(" ".join(sentences))
    return out
