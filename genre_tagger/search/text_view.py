"""The joint space's own sparse text view: tf-idf of whole words and word bigrams (or word
pieces: ``units``) (``SparseTextView``), fitted on the training albums' texts and read from
the same token windows as the tagger's text encoder (the text side's ``TextLoader``).

A frozen sentence encoder averages a review's few telling words away; a text query then
carries little of what it says about the music (measured: benchmarks/RESULTS.md, Search).
The view's vectors are the text side's input to the joint space (``JointSpace.text``), kept
apart from the tagger's features: the tagger reads its own text embedding, the joint space
the view. Fitted even when the tagger's text encoder has a sparse view of its own: that one
is part of the tagger's genre-trained input, which keeps what names genres and drops what
describes one album's sound.
"""

from __future__ import annotations

from pathlib import Path

from genre_tagger.data.records import AlbumRecord
from genre_tagger.data.text import TextLoader
from genre_tagger.features import ModalityFeatures, extract_features
from genre_tagger.models.encoders.base import build_encoder
from genre_tagger.models.encoders.sparse_text import SparseTextView
from genre_tagger.models.encoders.views import fit_views

CLASS_PATH = "genre_tagger.models.encoders.sparse_text.SparseTextView"


def fit_text_view(loader: TextLoader, train_records: list[AlbumRecord], settings: dict,
                  progress: bool = True) -> SparseTextView:
    """A ``SparseTextView(**settings)`` fitted on ``train_records``' texts as ``loader`` reads
    them (``units: words`` joins word pieces as the loader's tokenizer marks them); rebuilt
    from its spec (``load_view``), so the embedding cache knows it by its vocabulary."""
    settings = dict(settings)
    if settings.get("units") == "words":
        settings.setdefault("tokenizer", loader.tokenizer)
    view = SparseTextView(**settings)
    fit_views({loader.modality: view}, {loader.modality: loader}, [r for r in train_records if r.texts],
              progress=progress)
    return load_view(view_payload(view))


def view_features(view: SparseTextView, loader: TextLoader, records: list[AlbumRecord], cache_dir: Path | None,
                  progress: bool = True) -> ModalityFeatures:
    """The view's vectors ``[N, D_view]`` of ``records``' texts, through the embedding cache
    (the fingerprint holds the fitted vocabulary, so a refit never reads stale vectors)."""
    return extract_features(records, loader, view, cache_dir, batch_size=64, num_workers=0, device="cpu",
                            progress=progress)


def view_args(view: SparseTextView) -> dict:
    """What rebuilds the view before its state is loaded (the word-continuation and symbol ids are state)."""
    args = {"vocab_size": view.vocab_size, "bigram_buckets": view.bigram_buckets,
            "max_features": view.max_features, "min_df": view.min_df}
    if view.units == "words":
        args.update(units="words", word_buckets=view.unigram_ids)
    if not view.keep_symbols:
        args["keep_symbols"] = False
    return args


def view_payload(view: SparseTextView) -> dict:
    return {"init": view_args(view), "state_dict": {k: v.detach().cpu() for k, v in view.state_dict().items()}}


def load_view(payload: dict) -> SparseTextView:
    """The view stored by ``view_payload``, built from its spec (``build_encoder``)."""
    view = build_encoder({"class_path": CLASS_PATH, "init_args": dict(payload["init"])})
    view.load_state_dict(payload["state_dict"])
    return view.eval()
