"""A third synthetic catalog family, written apart from ``synthetic`` and ``synthetic2``.

Genres form a tree (sub-genres imply their parents; ``taxonomy.tsv``) with Zipf-like
popularity, so albums carry several labels with a long tail. Each genre has evidence in a
random subset of the modalities, rendered unlike the other families: tracks are songs in
sections (intro, verse, chorus, bridge, outro) and a genre's rhythm, timbre or drive plays
only in the sections it lives in; covers are flat layouts of letter-like strokes, colour
blocks and rules; texts are blurbs and lyric snippets in plain words that carry the genres'
theme words and nothing about the album itself. Modalities go missing at 10 / 20 / 25 %
(audio / cover / text), a few files are undecodable, and splits are artist-disjoint.
"""

from genre_tagger.data.synthetic3.catalog import write_catalog3

__all__ = ["write_catalog3"]
