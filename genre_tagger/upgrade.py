"""Files written by earlier releases, brought to today's shape in one step at load time.

Every saved file says its format and version (``genre_tagger.checkpoint/6``); loading runs
the steps from its version to today's, in order, and nothing else in the code knows about
older shapes. A tagger checkpoint's step also upgrades what it carries for other jobs (the
joint search space, ``genre_tagger.joint_space``). A config (in a checkpoint, or a user's overlay) is upgraded by
``upgrade_config``: idempotent, so a config already in today's shape passes unchanged.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

from genre_tagger.errors import UserInputError

TAGGER_FORMAT = "genre_tagger.checkpoint"
RECOMMENDER_FORMAT = "genre_tagger.recommender"
JOINT_SPACE_FORMAT = "genre_tagger.joint_space"  # stored inside a tagger checkpoint's extra
TAGGER_VERSION = 6
RECOMMENDER_VERSION = 2
JOINT_SPACE_VERSION = 2

# A joint space of format 1 stored JointSpace(input_dims, **init), the text side ("text" in
# every file of that format) among input_dims; a key missing from ``init`` meant the
# constructor's default of the time: these.
JOINT_SPACE_1_DEFAULTS = {"hidden": 512, "stem_width": None, "text_view_dim": 0, "input_norm": "layer",
                          "text_inputs": "both", "text_norm": "layer", "fusion": "mean", "dropout": 0.1,
                          "dim": 128, "temperature": 0.07, "learn_temperature": True}
JOINT_SPACE_1_TEXT = "text"

STRATEGIES = {"staged": "genre_tagger.training.strategies.StagedTraining",
              "end_to_end": "genre_tagger.training.strategies.EndToEndTraining"}


def upgrade_config(config: dict) -> dict:
    """A tagger run config in today's shape.

    - before training parts were class_paths: ``optim`` becomes the ``optimizer``'s
      init_args, ``training: {mode: ...}`` its strategy's class_path;
    - the per-modality late-fusion heads are gone: ``late_fusion: false`` and
      ``late_dropout`` are dropped; ``late_fusion: true`` is refused (no model uses it);
    - subset heads are no longer a warm and a fresh candidate kept by a margin: ``margin`` is
      dropped and the fresh candidate's ``fresh_epochs`` / ``fresh_lr`` become ``epochs`` / ``lr``.
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
    heads = config.get("subset_heads")
    if isinstance(heads, dict) and "margin" in heads:  # before blending: a kept/dropped warm and fresh head
        heads.pop("margin")
        fresh_epochs, fresh_lr = heads.pop("fresh_epochs", 0), heads.pop("fresh_lr", None)
        if fresh_epochs:
            heads["epochs"], heads["lr"] = fresh_epochs, fresh_lr if fresh_lr is not None else heads.get("lr")
    return config


def upgrade_recommender_config(config: dict) -> dict:
    """A recommender run config in today's shape: ``optim.content_loss`` (an auxiliary loss
    that was off by default and measured no better) is dropped when 0, refused otherwise."""
    config = copy.deepcopy(config)
    optim = config.get("optim")
    if isinstance(optim, dict) and optim.pop("content_loss", 0.0):
        raise UserInputError("optim.content_loss is no longer supported; remove it")
    return config


def _joint_space_1_to_2(payload: dict) -> dict:
    """A format-1 joint space in format 2: the album side is every entry of ``input_dims`` but
    the text, the text side's width the view's, the weights renamed from
    ``projections.<m>.<0|2>`` to today's modules (``stored_names`` keeps the old names, which
    identify the space to index folders made with it). Forms this release cannot express (an
    MLP, frozen stems, LayerNorm'd album inputs, a text side that read more than its view)
    raise ``ValueError`` naming them: they were off by default and measured no better."""
    init = {**JOINT_SPACE_1_DEFAULTS, **payload.get("init", {})}
    unsupported = {"hidden": init["hidden"] > 0, "stem_width": bool(init["stem_width"]),
                   "input_norm": init["input_norm"] != "standardize",
                   "text_inputs": init["text_inputs"] != "view" or not init["text_view_dim"]}
    refused = [key for key, bad in unsupported.items() if bad]
    text = JOINT_SPACE_1_TEXT
    if refused or text not in payload["input_dims"]:
        raise ValueError(", ".join(refused) or "no text side")
    renamed, stored_names = {}, {}
    for key, value in payload["state_dict"].items():
        parts = key.split(".")
        new = key
        if parts[0] == "projections":  # projections.<m>.<0: input scaling | 2: the linear map>.<param>
            m, layer, param = parts[1], parts[2], parts[-1]
            if m == text:
                new = f"{'text_scaling' if layer == '0' else 'text_map'}.{param}"
            else:
                new = f"{'scaling' if layer == '0' else 'album_maps'}.{m}.{param}"
        renamed[new], stored_names[new] = value, key
    keep = ("dim", "dropout", "temperature", "learn_temperature", "text_norm", "fusion")
    return {**payload, "format": f"{JOINT_SPACE_FORMAT}/2", "state_dict": renamed, "stored_names": stored_names,
            "album_dims": {m: d for m, d in payload["input_dims"].items() if m != text},
            "text_dim": int(init["text_view_dim"]), "init": {k: init[k] for k in keep}}


def _tagger_1_to_2(payload: dict) -> dict:
    """The config upgraded; a joint search space in ``extra`` brought to its format 2 (or, in
    a form this release cannot read, replaced by ``joint_space_unreadable``: the tagger
    still loads, search says why it cannot)."""
    extra = dict(payload.get("extra") or {})
    space = extra.get("joint_space")
    if isinstance(space, dict) and space.get("format") == f"{JOINT_SPACE_FORMAT}/1":
        try:
            extra["joint_space"] = _joint_space_1_to_2(space)
        except ValueError as err:
            del extra["joint_space"]
            extra["joint_space_unreadable"] = f"its joint search space ({err}) is a form this release no longer reads"
    return {**payload, "config": upgrade_config(payload["config"]), "extra": extra}


def _tagger_2_to_3(payload: dict) -> dict:
    """Linear probes without per-presence-pattern stacks get them, none fitted: every album
    keeps the one stack it had, so the file scores as before."""
    import torch

    state = dict(payload["state_dict"])
    if "probes.stack" in state and "probes.subset_stack" not in state:
        patterns, labels = 2 ** len(payload["modalities"]), len(payload["labels"])
        state["probes.subset_stack"] = torch.zeros(patterns, len(state["probes.stack"]))
        state["probes.subset_offset"] = torch.zeros(patterns, labels)
        state["probes.subset_fitted"] = torch.zeros(patterns, dtype=torch.bool)
    return {**payload, "state_dict": state}


def _tagger_3_to_4(payload: dict) -> dict:
    """Format 4 adds per-subset deep heads (``subset_heads.<subset>.*`` in the state dict); a
    file without them scores every album with the fused head, as before."""
    return dict(payload)


def _tagger_4_to_5(payload: dict) -> dict:
    """Format 5 blends a subset head's logits with the fused head's (``subset_heads.<subset>.blend``,
    the head's share); a file from before scores its subset albums by the head alone (share 1)."""
    import torch

    state = dict(payload["state_dict"])
    heads = dict.fromkeys(key.split(".")[1] for key in state if key.startswith("subset_heads."))
    for name in heads:
        state.setdefault(f"subset_heads.{name}.blend", torch.ones(()))
    return {**payload, "state_dict": state}


def _recommender_1_to_2(payload: dict) -> dict:
    payload = {**payload, "config": upgrade_recommender_config(payload["config"])}
    state = dict(payload["state_dict"])
    if "albums.id_weight" not in state and "albums.ids.weight" in state:  # before id_shrink: all ones
        import torch

        state["albums.id_weight"] = torch.ones(state["albums.ids.weight"].shape[0])
    payload["state_dict"] = state
    return payload


def _tagger_5_to_6(payload: dict) -> dict:
    """Format 6 adds each presence pattern's scale onto complete albums' (``probes.presence_*``):
    a file from before gets the identity and scores as before."""
    import torch

    state = dict(payload["state_dict"])
    if "probes.subset_fitted" in state and "probes.presence_scale" not in state:
        patterns, labels = len(state["probes.subset_fitted"]), len(payload["labels"])
        state["probes.presence_scale"] = torch.ones(patterns)
        state["probes.presence_shift"] = torch.zeros(patterns)
        state["probes.presence_mean"] = torch.zeros(patterns, labels)
    return {**payload, "state_dict": state}


STEPS: dict[str, dict[int, Callable[[dict], dict]]] = {
    TAGGER_FORMAT: {1: _tagger_1_to_2, 2: _tagger_2_to_3, 3: _tagger_3_to_4, 4: _tagger_4_to_5,
                    5: _tagger_5_to_6},
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
