"""The joint space as ``train`` stores it in ``model.ckpt`` (``bundle.extra["joint_space"]``),
and the one step that brings a payload of the previous format to today's.

Plain tensors and data, so the checkpoint still loads with ``weights_only=True``::

    format        "genre_tagger.joint_space/2"
    album_dims    {m: D_m}: the album-side modalities the space reads, in order
    text_dim      the text view's width (the text side's input)
    init          the rest of JointSpace's arguments (dim, dropout, temperature, ...)
    state_dict    the space's weights (input scaling included)
    text_view     the fitted text view (text_view.view_payload)
    genre_weight  the val-selected weight of the genre-score part of the search vectors
    index         FAISS settings of `index` (exact_up_to)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from genre_tagger.errors import UserInputError
from genre_tagger.search import text_view
from genre_tagger.search.joint import JointSpace

KIND = "genre_tagger.joint_space"
VERSION = 2

# Format 1 stored JointSpace(input_dims, **init) with the text side among input_dims. A key
# missing from its ``init`` meant the constructor's default of the time: these.
FORMAT1_DEFAULTS = {"hidden": 512, "stem_width": None, "text_view_dim": 0, "input_norm": "layer",
                    "text_inputs": "both", "text_norm": "layer", "fusion": "mean", "dropout": 0.1,
                    "dim": 128, "temperature": 0.07, "learn_temperature": True}


def joint_payload(space: JointSpace, view, genre_weight: float = 0.0, index: dict | None = None) -> dict:
    return {"format": f"{KIND}/{VERSION}", "album_dims": dict(space.album_dims), "text_dim": space.text_dim,
            "init": dict(space.init_args), "state_dict": {k: v.detach().cpu() for k, v in space.state_dict().items()},
            "text_view": text_view.view_payload(view), "genre_weight": float(genre_weight),
            "index": dict(index or {})}


def payload_version(payload: object) -> int | None:
    """The format version of a stored joint space, None when it is not one."""
    found = payload.get("format") if isinstance(payload, dict) else None
    name, _, version = str(found).rpartition("/")
    return int(version) if name == KIND and version.isdigit() else None


def space_digest(payload: dict) -> str:
    """What identifies a stored joint space (an index folder remembers it): its weights, its
    view's and its genre weight, as stored (so an upgraded payload keeps its digest)."""
    hasher = hashlib.sha1()
    view = (payload.get("text_view") or {}).get("state_dict") or {}
    for name, tensor in sorted(payload["state_dict"].items()) + sorted((f"view.{k}", v) for k, v in view.items()):
        hasher.update(name.encode())
        hasher.update(tensor.cpu().contiguous().numpy().tobytes())
    hasher.update(f"genre_weight={float(payload.get('genre_weight', 0.0))}".encode())
    return hasher.hexdigest()[:16]


def upgrade_joint_payload(payload: dict, text_side: str, path: str | Path) -> dict:
    """A stored joint space in today's format. Format 1 (``input_dims`` with the text side
    ``text_side`` among them; ``init`` missing keys read as ``FORMAT1_DEFAULTS``): the album
    side is every other entry of ``input_dims``, the text side's width the view's, the state
    renamed from ``projections.<m>.<0|2>`` to today's modules. Forms this release cannot
    express (an MLP, frozen stems, LayerNorm'd album inputs, a text side that read more than
    its view) are refused: they were off by default and measured no better."""
    version = payload_version(payload)
    if version is None:
        raise UserInputError(f"{path} holds no joint search space")
    if version > VERSION:
        raise UserInputError(f"{path} was written by a newer genre_tagger ({payload['format']}); upgrade genre_tagger")
    if version == VERSION:
        return payload
    init = {**FORMAT1_DEFAULTS, **payload.get("init", {})}
    unsupported = {"hidden": init["hidden"] > 0, "stem_width": bool(init["stem_width"]),
                   "input_norm": init["input_norm"] != "standardize",
                   "text_inputs": init["text_inputs"] != "view" or not init["text_view_dim"]}
    refused = [key for key, bad in unsupported.items() if bad]
    if refused or text_side not in payload["input_dims"]:
        raise UserInputError(f"{path}: its joint search space ({', '.join(refused) or 'no text side'}) is a form this "
                             "release no longer reads; train again with `genre-tagger train`")
    renamed = {}
    for key, value in payload["state_dict"].items():
        parts = key.split(".")
        if parts[0] == "projections":  # projections.<m>.<0: input scaling | 2: the linear map>.<param>
            m, layer, param = parts[1], parts[2], parts[-1]
            if m == text_side:
                key = f"{'text_scaling' if layer == '0' else 'text_map'}.{param}"
            else:
                key = f"{'scaling' if layer == '0' else 'album_maps'}.{m}.{param}"
        renamed[key] = value
    keep = ("dim", "dropout", "temperature", "learn_temperature", "text_norm", "fusion")
    return {**payload, "format": f"{KIND}/{VERSION}", "state_dict": renamed,
            "album_dims": {m: d for m, d in payload["input_dims"].items() if m != text_side},
            "text_dim": int(init["text_view_dim"]), "init": {k: init[k] for k in keep}}


def load_space(payload: dict) -> JointSpace:
    """The ``JointSpace`` of a payload in today's format, in eval mode."""
    space = JointSpace(payload["album_dims"], payload["text_dim"], **payload["init"])
    space.load_state_dict(payload["state_dict"])
    return space.eval()
