"""Synthetic multimodal album catalogs: the project's yardstick and test fixture generator.

``write_catalog(output_dir, n_albums, seed, ...)`` writes audio files, cover images,
reviews and ``manifest.jsonl`` (+ ``labels.txt``); ``plan_catalog`` gives the same
catalog's labels, splits and modality presence without rendering any media.
"""

from genre_tagger.data.synthetic.catalog import AlbumPlan, plan_catalog, write_catalog
from genre_tagger.data.synthetic.vocabulary import Vocabulary, build_vocabulary

__all__ = ["AlbumPlan", "Vocabulary", "build_vocabulary", "plan_catalog", "write_catalog"]
