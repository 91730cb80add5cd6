"""YAML configs: layered files, deep-merged, with swappable parts as class_path + init_args.

A run's config is ``genre_tagger/configs/default.yaml`` (shipped with the package;
``configs/`` at the repository root links there) overlaid by every ``--config`` file in order.
A swappable part is a mapping ``{"class_path": "pkg.mod.Class", "init_args": {...}}``;
``instantiate`` builds it. No string if/elif chains choose models.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

import yaml

from genre_tagger.errors import UserInputError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # shipped in the package; ./configs links here
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


def deep_merge(base: dict, overlay: dict) -> dict:
    """Return ``base`` updated by ``overlay`` recursively; ``init_args`` merge too.

    A new ``class_path`` replaces the whole part (its old arguments would not fit it).
    """
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if "class_path" in value and value.get("class_path") != old.get("class_path"):
                merged[key] = copy.deepcopy(value)
            else:
                merged[key] = deep_merge(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_config_path(name: str | Path) -> Path:
    """A path as given, else one of the shipped configs: ``model/x``, ``model/x.yaml`` and
    ``configs/model/x.yaml`` all name ``genre_tagger/configs/model/x.yaml``, from any folder."""
    path = Path(name)
    shipped = Path(*path.parts[1:]) if path.parts[:1] == ("configs",) else path
    candidates = [path, CONFIG_DIR / shipped, CONFIG_DIR / f"{shipped}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UserInputError(f"config file not found: {name}")


def read_yaml(path: str | Path) -> dict:
    path = resolve_config_path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserInputError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a config file must hold a mapping at the top level")
    return data


def load_config(overlays: list[str | Path] | None = None, base: dict | None = None) -> dict:
    """The default config, or ``base``, overlaid by each file of ``overlays`` in order."""
    config = copy.deepcopy(base) if base is not None else read_yaml(DEFAULT_CONFIG)
    for overlay in overlays or []:
        config = deep_merge(config, read_yaml(overlay))
    return config


def import_object(class_path: str) -> Any:
    module_name, _, attr = class_path.rpartition(".")
    if not module_name:
        raise UserInputError(f"class_path must be 'package.module.Name', got {class_path!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise UserInputError(f"cannot import {class_path!r}: {err}") from err


def instantiate(spec: dict, **extra_kwargs: Any) -> Any:
    """Build ``spec['class_path'](**spec['init_args'], **extra_kwargs)``."""
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise UserInputError(f"expected a mapping with 'class_path', got {spec!r}")
    cls = import_object(spec["class_path"])
    kwargs = dict(spec.get("init_args") or {})
    kwargs.update(extra_kwargs)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise UserInputError(f"bad arguments for {spec['class_path']}: {err}") from err


def dump_yaml(config: dict, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
