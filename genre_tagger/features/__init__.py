"""Per-modality embeddings of frozen encoders, computed once and cached on disk.

A cache folder per (modality, encoder fingerprint) holds append-only ``.npz`` shards of
``keys [n]``, ``embeddings [n, D]`` float32, ``present [n]`` bool and ``warnings [n]``
(JSON lists). The fingerprint covers the loader's and the encoder's configuration (and
the weights when they are not a package's), the album key covers the album's id and
its inputs (paths with size and mtime, or the inline texts): changing either makes the
old entries stale, so they are simply not found. Shards are written every few hundred
albums, so an interrupted extraction resumes where it stopped.

Modules: ``keys`` (album keys, encoder fingerprints), ``store`` (the shard folder),
``extract`` (encoders over albums through the cache). Every job that needs embeddings
(training, ablation, search, recommendation) imports them from here.
"""

from genre_tagger.features.extract import embed_records, extract_features, preload_items
from genre_tagger.features.keys import album_key, encoder_fingerprint, weights_digest
from genre_tagger.features.store import SHARD_ALBUMS, EmbeddingStore, ModalityFeatures

__all__ = ["EmbeddingStore", "ModalityFeatures", "SHARD_ALBUMS", "album_key", "embed_records", "encoder_fingerprint",
           "extract_features", "preload_items", "weights_digest"]
