"""What identifies a cached embedding: the album's inputs and the encoder's fingerprint.

The fingerprint covers the loader's and the encoder's configuration, and the weights when
they are not a package's (an encoder trained in this run); the album key covers the
album's id and its inputs for one modality, as the modality registry describes them
(paths with size and mtime, inline texts). Changing either makes old entries stale: they
are simply not found.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from genre_tagger.data.modalities import get_modality
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.models.encoders.base import Encoder


def _digest(payload: Any) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def weights_digest(module: torch.nn.Module) -> str:
    """Hash of a module's parameters and buffers (for encoders trained in this run)."""
    hasher = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        hasher.update(name.encode())
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def encoder_fingerprint(loader: ModalityLoader, encoder: Encoder) -> str:
    """What makes an embedding reproducible: preprocessing (``loader.cache_spec()``), the encoder's
    spec (``encoder.spec()``), its own weights, and its ``cache_version`` when its code says
    one (bumped when its output changes)."""
    payload = {"loader": loader.cache_spec(), "encoder": encoder.spec()}
    if getattr(encoder, "cache_version", None) is not None:  # an encoder's own code changed its output
        payload["version"] = encoder.cache_version
    if not encoder.weights_from_package or encoder.build_spec is None:
        payload["weights"] = weights_digest(encoder)
    return _digest(payload)[:16]


def album_key(record: AlbumRecord, modality: str) -> str:
    """Hash of an album's id and its inputs for one modality (``Modality.key_inputs``)."""
    return _digest([record.id, modality, get_modality(modality).key_inputs(record)])
