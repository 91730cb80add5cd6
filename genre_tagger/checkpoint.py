"""Self-contained checkpoints: weights, labels, thresholds and preprocessing in one file.

The file is a plain dict of tensors, strings and numbers, saved with ``torch.save`` and
read with ``torch.load(weights_only=True)``: loading a checkpoint from an untrusted source
never runs code. Frozen encoder weights that an installed package provides
(``Encoder.weights_from_package``) are rebuilt from the package, not stored.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch

from genre_tagger import __version__
from genre_tagger.bundle import TaggerBundle
from genre_tagger.data.dataset import build_loaders
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.errors import UserInputError
from genre_tagger.models.tagger import GenreTagger, build_tagger
from genre_tagger.pretrained.zero_shot import is_pretrained, load_pretrained
from genre_tagger.taxonomy import Taxonomy
from genre_tagger.upgrade import TAGGER_FORMAT, format_tag, upgrade_payload

FORMAT = format_tag(TAGGER_FORMAT)


def _stored_state(model: GenreTagger) -> dict[str, torch.Tensor]:
    skipped = tuple(
        f"encoders.{name}." for name, encoder in model.encoders.items()
        if encoder.frozen and encoder.weights_from_package
    )
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith(skipped)}


def save_checkpoint(path: Path, bundle: TaggerBundle) -> None:
    """Write atomically (temporary file, then rename): a crash never leaves half a checkpoint.
    ``bundle.extra`` (e.g. the joint search space) is stored beside the tagger."""
    payload = {
        "format": FORMAT,
        "version": __version__,
        "config": bundle.config,
        "modalities": bundle.modalities,
        "labels": list(bundle.labels),
        "thresholds": torch.as_tensor(np.asarray(bundle.thresholds, dtype=np.float32)),
        "loaders": {name: loader.spec() for name, loader in bundle.loaders.items()},
        "frozen": {name: bool(encoder.frozen) for name, encoder in bundle.model.encoders.items()},
        "state_dict": _stored_state(bundle.model),
        "extra": dict(bundle.extra),
        "taxonomy": bundle.taxonomy.to_payload() if bundle.taxonomy else [],
    }
    partial = Path(path).with_suffix(".partial")
    torch.save(payload, partial)
    partial.replace(path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", for_training: bool = False) -> TaggerBundle:
    """Rebuild a ``TaggerBundle``; clear errors for missing, foreign or corrupt files.

    Its loaders read for tagging (``ModalityLoader.for_tagging``: a text loader's
    ``tagging_max_chunks``) unless ``for_training``: jobs that train on the checkpoint's
    encoders (`update`, `ablate --encoders-from`) read albums as `train` did.
    ``pretrained:musicnn-mtt`` / ``pretrained:musicnn-msd``: musicnn's zero-shot tagger.
    """
    if is_pretrained(path):
        return load_pretrained(str(path), device)
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message advises weights_only=False: wrong advice for an untrusted file.
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise UserInputError(f"cannot load checkpoint {path}: it holds Python objects other than tensors "
                             f"and plain data{what}; refused") from err
    except Exception as err:  # truncation, not a torch file at all
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UserInputError(f"cannot load checkpoint {path}: {type(err).__name__}: {first_line}") from err
    payload = upgrade_payload(payload, TAGGER_FORMAT, path, "a genre_tagger checkpoint")
    config, modalities = payload["config"], payload["modalities"]
    model = build_tagger(config["model"], modalities, len(payload["labels"]))
    for subset, own_projections in stored_subset_heads(payload["state_dict"]):
        try:  # built first, so that their weights have somewhere to go
            model.add_subset_head(subset, own_projections=own_projections)
        except ValueError as err:
            raise UserInputError(f"{path}: {err}") from err
    for name, frozen in payload["frozen"].items():
        if frozen:
            model.encoders[name].freeze()
    try:
        missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
    except RuntimeError as err:  # shapes differ: made by another version of the model code
        first = str(err).strip().splitlines()
        raise UserInputError(f"{path}: weights do not fit this version's model: {first[-1].strip() if first else err}") from err
    skipped = tuple(f"encoders.{n}." for n, e in model.encoders.items() if e.frozen and e.weights_from_package)
    missing = [key for key in missing if not key.startswith(skipped)]
    if missing or unexpected:
        raise UserInputError(f"{path}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.to(device).eval()
    try:  # absent in files written before taxonomies: none
        model.taxonomy = Taxonomy.from_payload(payload["labels"], payload.get("taxonomy"))
    except (ValueError, TypeError) as err:
        raise UserInputError(f"{path}: its taxonomy does not fit its labels: {err}") from err
    loaders = {name: _loader_from_spec(spec) for name, spec in payload["loaders"].items()}
    if not for_training:
        loaders = {name: loader.for_tagging() for name, loader in loaders.items()}
    return TaggerBundle(model, loaders, list(payload["labels"]), payload["thresholds"].numpy(), config,
                        dict(payload.get("extra") or {}))


def stored_subset_heads(state: dict[str, torch.Tensor]) -> list[tuple[list[str], bool]]:
    """The subsets whose deep heads a stored state dict holds (``subset_heads.<a+b>.*`` keys),
    each with whether the head has projections of its own."""
    names = dict.fromkeys(key.split(".")[1] for key in state if key.startswith("subset_heads."))
    return [(name.split("+"), any(key.startswith(f"subset_heads.{name}.projections.") for key in state))
            for name in names]


def _loader_from_spec(spec: dict) -> ModalityLoader:
    return build_loaders({"m": spec}, ["m"])["m"]
