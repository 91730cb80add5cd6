"""The joint space's own sparse text view: tf-idf of whole words and word bigrams (or word
pieces: ``units``) (``SparseTextView``), fitted on the training albums' texts and read from
the same token windows as the text encoder (the bundle's ``TextLoader``).

A frozen sentence encoder averages a review's few telling words away; a text query then
carries little of what it says about the music (measured: benchmarks/RESULTS.md, Search).
The view's vector is appended to the text encoder's embedding, so everything downstream
sees one text vector ``[B, D_text + D_view]``: the joint space's text projection reads all
of it (``JointSpace(text_view_dim=...)``), the tagger only its first ``D_text`` columns
(``tagger_inputs``). Fitted even when the tagger's text encoder has a sparse view of its
own: that one reaches the joint space only through the tagger's genre-trained projection,
which keeps what names genres and drops what describes one album's sound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genre_tagger.bundle import TaggerBundle
from genre_tagger.data.records import AlbumRecord
from genre_tagger.features import ModalityFeatures, encoder_fingerprint, extract_features
from genre_tagger.models.encoders.sparse_text import SparseTextView
from genre_tagger.models.encoders.views import fit_views

CLASS_PATH = "genre_tagger.models.encoders.sparse_text.SparseTextView"


def wanted(bundle: TaggerBundle, settings: dict | None) -> bool:
    """A view is fitted when configured and the bundle reads text."""
    return bool(settings) and "text" in bundle.modalities


def fit_text_view(bundle: TaggerBundle, train_records: list[AlbumRecord], settings: dict,
                  progress: bool = True) -> SparseTextView:
    """A ``SparseTextView(**settings)`` fitted on ``train_records``' texts (``units: words``
    joins word pieces as the bundle's text tokenizer marks them)."""
    settings = dict(settings)
    if settings.get("units") == "words":
        settings.setdefault("tokenizer", bundle.loaders["text"].tokenizer)
    view = SparseTextView(**settings)
    fit_views({"text": view}, {"text": bundle.loaders["text"]}, [r for r in train_records if r.texts],
              progress=progress)
    return view.eval()


def view_features(view: SparseTextView, bundle: TaggerBundle, records: list[AlbumRecord], cache_dir: Path | None,
                  progress: bool = True) -> ModalityFeatures:
    """The view's vectors ``[N, D_view]`` of ``records``' texts, through the embedding cache
    (the fingerprint holds the fitted vocabulary, so a refit never reads stale vectors)."""
    view.build_spec = {"class_path": CLASS_PATH, "init_args": view_args(view)}
    return extract_features(records, bundle.loaders["text"], view, cache_dir, batch_size=64,
                            num_workers=0, device=torch.device("cpu"), progress=progress)


def widen(text: ModalityFeatures, view: ModalityFeatures) -> ModalityFeatures:
    """The text features with the view's vectors appended: ``[N, D_text + D_view]``."""
    embeddings = np.concatenate([text.embeddings, view.embeddings.astype(text.embeddings.dtype)], axis=1)
    return ModalityFeatures(embeddings, text.present, text.warnings)


def view_args(view: SparseTextView) -> dict:
    """What rebuilds the view before its state is loaded (the word-continuation ids are state)."""
    args = {"vocab_size": view.vocab_size, "bigram_buckets": view.bigram_buckets,
            "max_features": view.max_features, "min_df": view.min_df}
    if view.units == "words":
        args.update(units="words", word_buckets=view.unigram_ids)
    return args


def view_payload(view: SparseTextView) -> dict:
    return {"init": view_args(view), "state_dict": {k: v.detach().cpu() for k, v in view.state_dict().items()}}


def load_view(payload: dict | None) -> SparseTextView | None:
    if not payload:
        return None
    view = SparseTextView(**payload["init"])
    view.load_state_dict(payload["state_dict"])
    return view.eval()


def tagger_inputs(tagger: torch.nn.Module, embeddings: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{m: [B, D]}`` cut to the width each of the tagger's modality projections reads (a
    widened text vector loses the view's columns); other modalities pass unchanged."""
    out = {}
    for m, x in embeddings.items():
        width = tagger.projections[m][0].normalized_shape[0] if m in getattr(tagger, "projections", {}) else None
        out[m] = x[:, :width] if width is not None and x.shape[1] > width else x
    return out
