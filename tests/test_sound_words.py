"""Reviews that describe the album's own sound (data/synthetic/sound_words.py)."""

from __future__ import annotations

import dataclasses

import numpy as np

from genre_tagger.data.synthetic.audio_synth import AUDIO_PARAMS
from genre_tagger.data.synthetic.catalog import album_reviews, plan_catalog
from genre_tagger.data.synthetic.sound_words import SOUND_WORDS, add_sound_sentences, sound_traits
from genre_tagger.data.synthetic.style import CALIBRATION, build_world

TEMPO = AUDIO_PARAMS.index("tempo")
FAST = {w for level in SOUND_WORDS["tempo"][1] for w in level}
SLOW = {w for level in SOUND_WORDS["tempo"][0] for w in level}


def _latent(**logits: float) -> np.ndarray:
    z = np.zeros(len(AUDIO_PARAMS))
    for name, value in logits.items():
        z[AUDIO_PARAMS.index(name)] = value
    return z


def test_words_follow_the_latent_not_only_its_sign():
    rng = np.random.default_rng(0)
    fast = [sound_traits(_latent(tempo=3.0), 1, 0.0, rng)[0] for _ in range(50)]
    mild = [sound_traits(_latent(tempo=1.0), 1, 0.0, rng)[0] for _ in range(50)]
    assert set(fast) <= set(SOUND_WORDS["tempo"][1][1])          # strong words past STRONG
    assert set(mild) <= set(SOUND_WORDS["tempo"][1][0])
    assert sound_traits(_latent(tempo=0.3), 1, 0.0, rng) == []    # unremarkable: never named
    wrong = [sound_traits(_latent(tempo=-3.0), 1, 0.5, rng)[0] for _ in range(400)]
    assert 0.35 < np.mean([w in FAST for w in wrong]) < 0.65       # the error rate flips the trait


def test_sentences_are_inserted_between_sentences_and_none_at_rate_zero():
    reviews = ["First sentence here. Second one. Third one."]
    rng = np.random.default_rng(1)
    same = add_sound_sentences(reviews, _latent(tempo=3.0, reverb=3.0), 0.0, 0.0, rng)
    assert same == reviews
    longer = add_sound_sentences(reviews * 20, _latent(tempo=3.0, reverb=3.0), 2.0, 0.0, rng)
    assert all(r.count(".") >= 3 for r in longer)
    assert all(s in r for r in longer for s in ("First sentence here.", "Second one.", "Third one."))
    assert sum(any(w in r for w in FAST) for r in longer) > 10


def test_catalog_reviews_tell_fast_albums_from_slow_ones_within_a_genre():
    plans = [p for p in plan_catalog(n_albums=400, seed=3, n_labels=50) if p.n_texts]
    world = build_world(50)
    fast_words = slow_words = 0
    for plan in plans:
        text = " ".join(album_reviews(plan, 3, (40, 120), world)).lower()
        words = set(text.replace(".", " ").replace(",", " ").split())
        if plan.audio_z[TEMPO] > 1.5:
            fast_words += len(words & FAST) - len(words & SLOW)
        elif plan.audio_z[TEMPO] < -1.0:
            slow_words += len(words & SLOW) - len(words & FAST)
    assert fast_words > 10 and slow_words > 3


def test_rest_of_the_review_does_not_move_with_the_sound_sentences():
    plan = next(p for p in plan_catalog(n_albums=50, seed=0, n_labels=50) if p.n_texts)
    quiet = dataclasses.replace(CALIBRATION, text_sound_sentences=0.0)
    without = album_reviews(plan, 0, (40, 120), build_world(50, quiet))
    with_sound = album_reviews(plan, 0, (40, 120), build_world(50))
    for before, after in zip(without, with_sound):
        for sentence in before.split(". "):
            assert sentence.rstrip(".") in after
