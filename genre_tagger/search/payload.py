"""The joint space as ``train`` stores it in ``model.ckpt`` (``bundle.extra["joint_space"]``),
in today's format (``genre_tagger.upgrade`` brings older ones to it when a checkpoint loads).

Plain tensors and data, so the checkpoint still loads with ``weights_only=True``::

    format        "genre_tagger.joint_space/2"
    album_dims    {m: D_m}: the album-side modalities the space reads, in order
    text_dim      the text view's width (the text side's input)
    init          the rest of JointSpace's arguments (dim, dropout, temperature, ...)
    state_dict    the space's weights (input scaling included)
    text_view     the fitted text view (text_view.view_payload)
    genre_weight  the val-selected album weight of the genre-score part of the search vectors
                  (the gallery's; album-to-album queries)
    text_genre_weight  the val-selected text weight (text-to-album queries); absent in
                  older payloads, where ``genre_weight`` served both (``combine.py``)
    index         FAISS settings of `index` (exact_up_to)
"""

from __future__ import annotations

import hashlib

from genre_tagger.search import text_view
from genre_tagger.search.joint import JointSpace
from genre_tagger.upgrade import JOINT_SPACE_FORMAT, JOINT_SPACE_VERSION

KIND = JOINT_SPACE_FORMAT
VERSION = JOINT_SPACE_VERSION


def joint_payload(space: JointSpace, view, genre_weight: float = 0.0, index: dict | None = None,
                  text_genre_weight: float | None = None) -> dict:
    """``text_genre_weight`` None: ``genre_weight`` for both query directions."""
    text = float(genre_weight if text_genre_weight is None else text_genre_weight)
    return {"format": f"{KIND}/{VERSION}", "album_dims": dict(space.album_dims), "text_dim": space.text_dim,
            "init": dict(space.init_args), "state_dict": {k: v.detach().cpu() for k, v in space.state_dict().items()},
            "text_view": text_view.view_payload(view), "genre_weight": float(genre_weight),
            "text_genre_weight": text, "index": dict(index or {})}


def genre_weights(payload: dict) -> tuple[float, float]:
    """``(album weight, text weight)`` of a stored joint space; older payloads hold one weight for both."""
    album = float(payload.get("genre_weight", 0.0))
    return album, float(payload.get("text_genre_weight", album))


def payload_version(payload: object) -> int | None:
    """The format version of a stored joint space, None when it is not one."""
    found = payload.get("format") if isinstance(payload, dict) else None
    name, _, version = str(found).rpartition("/")
    return int(version) if name == KIND and version.isdigit() else None


def space_digest(payload: dict) -> str:
    """What identifies a stored joint space (an index folder remembers it): its weights, its
    view's and its album genre weight (the gallery vectors' only; the text weight shapes
    queries alone), under the names they were stored with (``stored_names``: an
    upgraded payload keeps its digest)."""
    hasher = hashlib.sha1()
    view = (payload.get("text_view") or {}).get("state_dict") or {}
    names = payload.get("stored_names") or {}
    weights = [(names.get(k, k), v) for k, v in payload["state_dict"].items()]
    for name, tensor in sorted(weights) + sorted((f"view.{k}", v) for k, v in view.items()):
        hasher.update(name.encode())
        hasher.update(tensor.cpu().contiguous().numpy().tobytes())
    hasher.update(f"genre_weight={float(payload.get('genre_weight', 0.0))}".encode())
    return hasher.hexdigest()[:16]


def load_space(payload: dict) -> JointSpace:
    """The ``JointSpace`` of a payload in today's format, in eval mode."""
    space = JointSpace(payload["album_dims"], payload["text_dim"], **payload["init"])
    space.load_state_dict(payload["state_dict"])
    return space.eval()
