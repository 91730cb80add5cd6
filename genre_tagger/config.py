"""YAML configs: layered files, deep-merged, with swappable parts as class_path + init_args.

A run's config is ``genre_tagger/configs/default.yaml`` (shipped with the package;
``configs/`` at the repository root links there) overlaid by every ``--config`` file in order.
A swappable part is a mapping ``{"class_path": "pkg.mod.Class", "init_args": {...}}``;
``instantiate`` builds it, nested parts first (the same shape as LightningCLI's
class_path/init_args, built from the merged dict so plain settings can sit beside parts).
A setting that two parts must share is written once and referenced as ``${dotted.path}``
(e.g. the audio encoder's ``n_mels: ${data.loaders.audio.init_args.n_mels}``);
``load_config`` resolves references after merging, so overlays change the one place.
"""

from __future__ import annotations

import copy
import functools
import importlib
import re
from pathlib import Path
from typing import Any

import yaml

from genre_tagger.errors import UserInputError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # shipped in the package; ./configs links here
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
_REFERENCE = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")


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


def _lookup(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserInputError(f"config reference ${{{dotted}}} names no setting")
        node = node[part]
    return node


def resolve_references(config: dict) -> dict:
    """Replace every ``"${a.b.c}"`` string by the value at that path (references may chain)."""
    def resolve(node: Any, depth: int = 0) -> Any:
        if isinstance(node, dict):
            return {k: resolve(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, depth) for v in node]
        match = _REFERENCE.match(node) if isinstance(node, str) else None
        if match is None:
            return node
        if depth > 10:
            raise UserInputError(f"config reference ${{{match.group(1)}}} refers to itself")
        return resolve(copy.deepcopy(_lookup(config, match.group(1))), depth + 1)

    return resolve(config)


def load_config(overlays: list[str | Path] | None = None, base: dict | None = None) -> dict:
    """The default config, or ``base``, overlaid by each file of ``overlays`` in order,
    with ``${...}`` references resolved."""
    config = copy.deepcopy(base) if base is not None else read_yaml(DEFAULT_CONFIG)
    for overlay in overlays or []:
        config = deep_merge(config, read_yaml(overlay))
    return resolve_references(config)


def import_object(class_path: str) -> Any:
    module_name, _, attr = class_path.rpartition(".")
    if not module_name:
        raise UserInputError(f"class_path must be 'package.module.Name', got {class_path!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise UserInputError(f"cannot import {class_path!r}: {err}") from err


def is_spec(value: Any) -> bool:
    return isinstance(value, dict) and "class_path" in value


def _build_nested(value: Any) -> Any:
    if is_spec(value):
        return instantiate(value)
    if isinstance(value, list):
        return [_build_nested(v) for v in value]
    return value


def instantiate(spec: dict, partial: bool = False, **extra_kwargs: Any) -> Any:
    """Build ``spec['class_path'](**spec['init_args'], **extra_kwargs)``, nested specs first.

    ``partial=True`` returns ``functools.partial`` of it instead (for parts that need
    run-time arguments, e.g. an optimizer needs the parameters). An object that is already
    built is returned as it is.
    """
    if not isinstance(spec, dict):
        return spec
    if "class_path" not in spec:
        raise UserInputError(f"expected a mapping with 'class_path', got {spec!r}")
    target = import_object(spec["class_path"])
    kwargs = {k: _build_nested(v) for k, v in (spec.get("init_args") or {}).items()}
    kwargs.update(extra_kwargs)
    if partial:
        return functools.partial(target, **kwargs)
    try:
        return target(**kwargs)
    except TypeError as err:
        raise UserInputError(f"bad arguments for {spec['class_path']}: {err}") from err


def spec_of(obj: Any) -> dict:
    """``{"class_path", "init_args"}`` that rebuilds ``obj`` (it must have ``settings()``)."""
    cls = type(obj)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": obj.settings()}


def dump_yaml(config: dict, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
