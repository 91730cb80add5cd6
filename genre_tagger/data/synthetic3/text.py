"""Third-family texts: short blurbs and lyric snippets in plain words.

A text says nothing about its album in particular (no artist, title or sound of its own):
it is everyday words (``COMMON``) with the theme words of the album's genres that speak
through text, about ``strength`` of them per genre and text, and now and then the genre's
name. Albums whose genres have no text evidence get texts of everyday words only, as most
lyrics and one-line descriptions say little about the genre.
"""

from __future__ import annotations

import numpy as np

from genre_tagger.data.synthetic3.words import COMMON

NAME_RATE = 0.08  # chance that a text names one of its genres


def _tokens(evidence: list[tuple[tuple[str, ...], str, float]], length: int,
            rng: np.random.Generator) -> list[str]:
    tokens = [str(w) for w in rng.choice(COMMON, size=length)]
    for words, _, strength in evidence:
        for _ in range(int(rng.poisson(strength))):
            tokens.insert(int(rng.integers(len(tokens) + 1)), str(words[rng.integers(len(words))]))
    return tokens


def _lyrics(tokens: list[str], rng: np.random.Generator) -> str:
    lines, at = [], 0
    while at < len(tokens):
        step = int(rng.integers(4, 8))
        lines.append(" ".join(tokens[at:at + step]).capitalize())
        at += step
    return "\n".join(lines)


def _blurb(tokens: list[str], rng: np.random.Generator) -> str:
    sentences, at = [], 0
    while at < len(tokens):
        step = int(rng.integers(8, 16))
        sentences.append(" ".join(tokens[at:at + step]).capitalize() + ".")
        at += step
    return " ".join(sentences)


def render_texts(evidence: list[tuple[tuple[str, ...], str, float]], n_texts: int,
                 rng: np.random.Generator) -> list[str]:
    """``evidence``: ``(theme words, genre name, mean theme words per text)`` for the album's
    genres that speak through text -> ``n_texts`` texts (lyrics or blurbs)."""
    texts = []
    for _ in range(n_texts):
        lyric = rng.random() < 0.5
        tokens = _tokens(evidence, int(rng.integers(20, 36) if lyric else rng.integers(15, 45)), rng)
        text = _lyrics(tokens, rng) if lyric else _blurb(tokens, rng)
        if evidence and rng.random() < NAME_RATE:
            name = evidence[rng.integers(len(evidence))][1]
            text += f"\nFor fans of {name}." if lyric else f" For fans of {name}."
        texts.append(text)
    return texts
