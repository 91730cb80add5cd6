"""genre_tagger: multimodal, multi-label music genre tagging (audio, cover art, texts)."""

import os

# Never reach for a model hub at run time: every model ships in a local package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.2.0"
