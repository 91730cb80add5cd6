"""Files written by earlier releases, brought to today's shape in one step at load time.

Every saved file says its format and version (``genre_tagger.checkpoint/2``); loading runs
the steps from its version to today's, in order, and nothing else in the code knows about
older shapes. A config (in a checkpoint, or a user's overlay) is upgraded by
``upgrade_config``: idempotent, so a config already in today's shape passes unchanged.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

from genre_tagger.errors import UserInputError

TAGGER_FORMAT = "genre_tagger.checkpoint"
RECOMMENDER_FORMAT = "genre_tagger.recommender"
TAGGER_VERSION = 2
RECOMMENDER_VERSION = 2

STRATEGIES = {"staged": "genre_tagger.training.strategies.StagedTraining",
              "end_to_end": "genre_tagger.training.strategies.EndToEndTraining"}


def upgrade_config(config: dict) -> dict:
    """A tagger run config in today's shape.

    - before training parts were class_paths: ``optim`` becomes the ``optimizer``'s
      init_args, ``training: {mode: ...}`` its strategy's class_path;
    - the per-modality late-fusion heads are gone: ``late_fusion: false`` and
      ``late_dropout`` are dropped; ``late_fusion: true`` is refused (no model uses it).
    """
    config = copy.deepcopy(config)
    legacy_optim = config.pop("optim", None)
    if legacy_optim is not None and "optimizer" not in config:
        config["optimizer"] = {"class_path": "torch.optim.AdamW", "init_args": dict(legacy_optim)}
        config.setdefault("scheduler", {"class_path": "genre_tagger.training.optim.cosine_schedule",
                                        "init_args": {"final_lr_fraction": 0.05}})
    training = config.get("training")
    if isinstance(training, dict) and "mode" in training:  # an old overlay on today's default: mode wins
        if training["mode"] not in STRATEGIES:
            raise UserInputError(f"training.mode must be 'staged' or 'end_to_end', got {training['mode']!r}")
        config["training"] = {"class_path": STRATEGIES[training["mode"]]}
    tagger = config.get("model", {}).get("tagger")
    if isinstance(tagger, dict):
        if tagger.pop("late_fusion", False):
            raise UserInputError("model.tagger.late_fusion is no longer supported (the linear probes, "
                                 "model.tagger.probes, do what it did and better); remove it")
        tagger.pop("late_dropout", None)
    return config


def upgrade_recommender_config(config: dict) -> dict:
    """A recommender run config in today's shape: ``optim.content_loss`` (an auxiliary loss
    that was off by default and measured no better) is dropped when 0, refused otherwise."""
    config = copy.deepcopy(config)
    optim = config.get("optim")
    if isinstance(optim, dict) and optim.pop("content_loss", 0.0):
        raise UserInputError("optim.content_loss is no longer supported; remove it")
    return config


def _tagger_1_to_2(payload: dict) -> dict:
    return {**payload, "config": upgrade_config(payload["config"])}


def _recommender_1_to_2(payload: dict) -> dict:
    payload = {**payload, "config": upgrade_recommender_config(payload["config"])}
    state = dict(payload["state_dict"])
    if "albums.id_weight" not in state and "albums.ids.weight" in state:  # before id_shrink: all ones
        import torch

        state["albums.id_weight"] = torch.ones(state["albums.ids.weight"].shape[0])
    payload["state_dict"] = state
    return payload


STEPS: dict[str, dict[int, Callable[[dict], dict]]] = {
    TAGGER_FORMAT: {1: _tagger_1_to_2},
    RECOMMENDER_FORMAT: {1: _recommender_1_to_2},
}
CURRENT = {TAGGER_FORMAT: TAGGER_VERSION, RECOMMENDER_FORMAT: RECOMMENDER_VERSION}


def format_tag(kind: str) -> str:
    """What today's release writes in a file's ``format`` field."""
    return f"{kind}/{CURRENT[kind]}"


def upgrade_payload(payload: object, kind: str, path: str | Path, what: str) -> dict:
    """A loaded file's payload, checked to be a ``kind`` file and upgraded to today's version."""
    found = payload.get("format") if isinstance(payload, dict) else None
    name, _, version = str(found).rpartition("/")
    if name != kind or not version.isdigit():
        raise UserInputError(f"{path} is not {what}")
    version = int(version)
    if version > CURRENT[kind]:
        raise UserInputError(f"{path} was written by a newer genre_tagger ({found}); upgrade genre_tagger to read it")
    for step in range(version, CURRENT[kind]):
        payload = STEPS[kind][step](payload)
    return {**payload, "format": format_tag(kind)}
