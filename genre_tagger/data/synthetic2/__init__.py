"""A second synthetic catalog family, written apart from ``genre_tagger.data.synthetic``.

It renders genre evidence differently on purpose, so that a change that helps only one
generator shows up as such: audio evidence lives in pulse rate, a resonant noise band,
amplitude-modulation rate or loudness sections (over random pitches and artist noise);
covers carry motifs (stripe orientation, a hue patch, a grid pitch, dot size) over artist
backgrounds; texts are invented words where a genre speaks only through a few rare
keywords among Zipfian filler and artist pet words, and reviews name the artist's signature
sound in invented words (``sound.py``). Genres form a tree within their clusters (a
sub-genre implies its parents on every album; ``world.py``). Each genre has evidence in a random
subset of the modalities; some modalities are missing; splits are artist-disjoint.
"""

from genre_tagger.data.synthetic2.catalog import write_catalog2

__all__ = ["write_catalog2"]
