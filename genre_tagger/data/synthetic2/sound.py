"""Second family: sentences in which a review names what the album sounds like.

In this family an album's audio carries, besides its genres' components, the artist's own
signature component (``_artist(...)["audio"]``: a pulse at some rate, a resonant band at some
centre, a tremolo at some rate, or loud/quiet sections of some period). A reviewer names it
with an invented noun for the kind and an invented level word (low / middle / high third of
the parameter's range), now and then the wrong level. With artist-disjoint splits this is
what a test album's review shares with its audio beyond its genres: the case text-to-music
search exists for. The words (letters outside ``world.SYLLABLES``' inventory, e.g. "y") never
collide with filler, genre keywords or pet words.
"""

from __future__ import annotations

import math

import numpy as np

KIND_WORDS = {"pulse": "tyktyk", "band": "hymmor", "tremolo": "wybbel", "sections": "clyfter"}
LEVEL_WORDS = ("lyw", "myd", "hyc")
# kind: (parameter, low end, high end, log scale) of world._audio_evidence's ranges
RANGES = {"pulse": ("rate", 1.2, 4.5, False), "band": ("centre", 250.0, 5000.0, True),
          "tremolo": ("mod", 4.0, 12.0, False), "sections": ("period", 0.4, 1.6, False)}


def level(evidence: dict) -> int:
    """0, 1 or 2: the third of its kind's parameter range the component's parameter lies in."""
    name, low, high, log = RANGES[evidence["kind"]]
    value = evidence[name]
    if log:
        value, low, high = math.log(value), math.log(low), math.log(high)
    return int(np.clip((value - low) / (high - low) * 3, 0, 2.999))


def sound_sentences(evidence: dict, mean_count: float, error_rate: float, rng: np.random.Generator) -> list[str]:
    """Poisson(``mean_count``) sentences naming ``evidence`` (the artist's signature component)."""
    out = []
    for _ in range(rng.poisson(mean_count)):
        heard = level(evidence)
        if rng.random() < error_rate:
            heard = int(rng.choice([v for v in range(3) if v != heard]))
        out.append(f"{LEVEL_WORDS[heard].capitalize()} {KIND_WORDS[evidence['kind']]}.")
    return out


def add_sound_sentences(review: str, sentences: list[str], rng: np.random.Generator) -> str:
    """``review`` with ``sentences`` inserted at random sentence boundaries (unchanged without any)."""
    if not sentences:
        return review
    parts = [p for p in review.split(". ") if p]
    parts = [p if p.endswith(".") else p + "." for p in parts]
    for sentence in sentences:
        parts.insert(int(rng.integers(len(parts) + 1)), sentence)
    return " ".join(parts)
