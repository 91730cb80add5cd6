"""The joint space's own sparse text view: tf-idf of word pieces and their bigrams
(``SparseTextView``), fitted on the training albums' texts and read from the same token
windows as the text encoder (the bundle's ``TextLoader``).

A frozen sentence encoder averages a review's few telling words away; a text query then
carries little of what it says about the music (measured: benchmarks/RESULTS.md, Search).
The view's vector is appended to the text encoder's embedding, so everything downstream
sees one text vector ``[B, D_text + D_view]``: the joint space's text projection reads all
of it (``JointSpace(text_view_dim=...)``), the tagger only its first ``D_text`` columns
(``tagger_inputs``). Skipped when the tagger's text encoder already fits such a view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genre_tagger.checkpoint import TaggerBundle
from genre_tagger.data.records import AlbumRecord
from genre_tagger.features import ModalityFeatures, encoder_fingerprint, extract_features
from genre_tagger.models.encoders.sparse_text import SparseTextView
from genre_tagger.models.encoders.views import fit_views

CLASS_PATH = "genre_tagger.models.encoders.sparse_text.SparseTextView"


def wanted(bundle: TaggerBundle, settings: dict | None) -> bool:
    """A view is fitted when configured, the bundle reads text, and its text encoder has none of its own."""
    encoder = bundle.model.encoders["text"] if "text" in bundle.modalities else None
    return bool(settings) and encoder is not None and not getattr(encoder, "needs_fit", False)


def fit_text_view(bundle: TaggerBundle, train_records: list[AlbumRecord], settings: dict,
                  progress: bool = True) -> SparseTextView:
    """A ``SparseTextView(**settings)`` fitted on ``train_records``' texts."""
    view = SparseTextView(**settings)
    fit_views({"text": view}, {"text": bundle.loaders["text"]}, [r for r in train_records if r.texts],
              progress=progress)
    return view.eval()


def view_features(view: SparseTextView, bundle: TaggerBundle, records: list[AlbumRecord], cache_dir: Path | None,
                  progress: bool = True) -> ModalityFeatures:
    """The view's vectors ``[N, D_view]`` of ``records``' texts, through the embedding cache
    (the fingerprint holds the fitted vocabulary, so a refit never reads stale vectors)."""
    spec = {"class_path": CLASS_PATH, "init_args": view_args(view)}
    fingerprint = encoder_fingerprint(bundle.loaders["text"], spec, view)
    return extract_features(records, bundle.loaders["text"], view, fingerprint, cache_dir, batch_size=64,
                            num_workers=0, device=torch.device("cpu"), progress=progress)


def widen(text: ModalityFeatures, view: ModalityFeatures) -> ModalityFeatures:
    """The text features with the view's vectors appended: ``[N, D_text + D_view]``."""
    embeddings = np.concatenate([text.embeddings, view.embeddings.astype(text.embeddings.dtype)], axis=1)
    return ModalityFeatures(embeddings, text.present, text.warnings)


def view_args(view: SparseTextView) -> dict:
    return {"vocab_size": view.vocab_size, "bigram_buckets": view.bigram_buckets,
            "max_features": view.max_features, "min_df": view.min_df}


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
