"""YAML configs: layered files, deep-merged, with swappable parts as class_path + init_args.

A run's config is ``genre_tagger/configs/default.yaml`` (shipped with the package;
``configs/`` at the repository root links there) overlaid by every ``--config`` file in order.
A swappable part is a mapping ``{"class_path": "pkg.mod.Class", "init_args": {...}}``;
``instantiate`` builds it, nested parts first (the same shape as LightningCLI's
class_path/init_args, built from the merged dict so plain settings can sit beside parts).
A setting that two parts must share is written once and referenced as ``${dotted.path}``
(e.g. the audio encoder's ``n_mels: ${data.loaders.audio.init_args.n_mels}``);
``load_config`` resolves references after merging, so overlays change the one place.

Every key of an overlay must already be a key of the config it lays over (the shipped
default lists every setting the code reads), else ``load_config`` refuses the file, naming
the key: a typo is an error, not a setting quietly dropped. Not checked there:

- what sits inside a part (a mapping with ``class_path``) besides its two keys:
  ``init_args`` are checked against the class's signature when ``instantiate`` builds it,
  and a new ``class_path`` replaces the part whole (``deep_merge``);
- a new name in a collection of parts, ``NAMED_PARTS`` (``data.loaders``,
  ``model.encoders``: one part per modality, and registered modalities add their own),
  as long as it comes as a part (with ``class_path``);
- the free-form sections, ``FREE_FORM``, which are keyword arguments for a library or
  names the user picks: ``trainer`` (any ``pytorch_lightning.Trainer`` argument, plus
  ``patience`` and ``callbacks``: checked against Trainer's signature instead),
  ``logger.wandb`` (passed through Lightning's WandbLogger to ``wandb.init``, which takes
  any of its many settings) and ``after_training`` (hook names of the user's choosing,
  mapped to import paths).

A section whose shipped defaults live in a file of their own and are merged in by the job
that reads them, ``SECTION_DEFAULTS`` (``search``: ``configs/search/joint.yaml``), is
checked against that file.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import inspect
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from genre_tagger.errors import UserInputError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # shipped in the package; ./configs links here
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
_REFERENCE = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")
SPEC_KEYS = ("class_path", "init_args")

# dotted section -> (import path of the callable whose keyword arguments it holds, or None
# for anything; the keys the code reads beside them)
FREE_FORM: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "trainer": ("pytorch_lightning.Trainer", ("patience", "callbacks")),
    "logger.wandb": (None, ()),
    "after_training": (None, ()),
}
NAMED_PARTS = ("data.loaders", "model.encoders")
SECTION_DEFAULTS = {"search": "search/joint.yaml"}  # for the tagger's config (base None)


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


def display_path(name: str | Path) -> str:
    """How a config file is named in messages: ``configs/...`` for a shipped one."""
    path = resolve_config_path(name).resolve()
    return f"configs/{path.relative_to(CONFIG_DIR).as_posix()}" if path.is_relative_to(CONFIG_DIR) else str(name)


def _free_form_keys(section: str) -> set[str] | None:
    """The keys a free-form section may hold, or None for any."""
    target, extra = FREE_FORM[section]
    if target is None:
        return None
    parameters = inspect.signature(import_object(target)).parameters
    return {name for name, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} | set(extra)


def _unknown(where: str, dotted: str, known: Any, listed: str | None = None) -> UserInputError:
    names = [str(k) for k in known] if isinstance(known, (dict, set, list, tuple)) else []
    close = difflib.get_close_matches(dotted.rpartition(".")[2], names, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    listed = listed or ", ".join(names) or "none: it is not a section"
    return UserInputError(f"{where}: unknown key {dotted} (known: {listed}){hint}")


def check_keys(overlay: dict, known: dict, where: str, path: str = "") -> None:
    """Refuse (``UserInputError`` naming ``where`` and the dotted key) any key of ``overlay``
    that ``known`` (the config it lays over) does not have, but for the exceptions in the
    module's docstring."""
    for key, value in overlay.items():
        dotted = f"{path}{key}"
        if key not in known:
            if path.rstrip(".") in NAMED_PARTS and is_spec(value):
                continue  # a new modality's part: its init_args are checked when it is built
            raise _unknown(where, dotted, known)
        old = known[key]
        if not (isinstance(value, dict) and isinstance(old, dict)):
            continue  # a value replaced whole
        if is_spec(old) or is_spec(value):
            stray = [k for k in value if k not in SPEC_KEYS]
            if stray:
                raise _unknown(where, f"{dotted}.{stray[0]}", SPEC_KEYS)
        elif dotted in FREE_FORM:
            new = [k for k in value if k not in old]
            allowed = _free_form_keys(dotted) if new else None
            for name in new:
                if allowed is not None and name not in allowed:
                    target, extra = FREE_FORM[dotted]
                    raise _unknown(where, f"{dotted}.{name}", allowed, ", ".join([*extra, f"any {target} argument"]))
        else:
            check_keys(value, old, where, f"{dotted}.")


def load_config(overlays: list[str | Path] | None = None, base: dict | None = None,
                upgrade: Callable[[dict], dict] | None = None) -> dict:
    """The default config, or ``base``, overlaid by each file of ``overlays`` in order,
    with ``${...}`` references resolved.

    Each overlay is first brought to today's shape by ``upgrade`` (default: the tagger's
    ``genre_tagger.upgrade.upgrade_config`` when ``base`` is None, nothing otherwise), then
    its keys are checked against the config so far (``check_keys``): an unknown key is a
    ``UserInputError`` naming the file and the key.
    """
    if base is None:
        from genre_tagger.upgrade import upgrade_config

        config = read_yaml(DEFAULT_CONFIG)
        upgrade = upgrade or upgrade_config
        sections = {name: read_yaml(path)[name] for name, path in SECTION_DEFAULTS.items() if name not in config}
    else:
        config, sections = copy.deepcopy(base), {}
    for overlay in overlays or []:
        data = read_yaml(overlay)
        data = upgrade(data) if upgrade is not None else data
        check_keys(data, deep_merge(sections, config) if sections else config, display_path(overlay))
        config = deep_merge(config, data)
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


def _check_arguments(class_path: str, target: Any, kwargs: dict, partial: bool) -> None:
    """``kwargs`` fit ``target``'s signature (all of its required arguments unless ``partial``),
    else a ``UserInputError`` naming ``class_path`` and the argument."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # some builtins have none: the call itself will tell
        return
    parameters = signature.parameters
    accepted = [n for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    unknown = [] if takes_any else [k for k in kwargs if k not in accepted]
    problem = f"unknown argument {unknown[0]!r}" if unknown else None
    if problem is None:
        try:
            (signature.bind_partial if partial else signature.bind)(**kwargs)
        except TypeError as err:
            problem = str(err)
    if problem is not None:
        close = difflib.get_close_matches(unknown[0], accepted, n=1) if unknown else []
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UserInputError(f"bad arguments for {class_path}: {problem} (it takes: {', '.join(accepted)}){hint}")


def instantiate(spec: dict, partial: bool = False, **extra_kwargs: Any) -> Any:
    """Build ``spec['class_path'](**spec['init_args'], **extra_kwargs)``, nested specs first.

    ``partial=True`` returns ``functools.partial`` of it instead (for parts that need
    run-time arguments, e.g. an optimizer needs the parameters). An object that is already
    built is returned as it is. Arguments the class does not take, or a required one
    missing (not with ``partial``), are a ``UserInputError`` naming the class_path and the
    argument, raised before anything is built.
    """
    if not isinstance(spec, dict):
        return spec
    if "class_path" not in spec:
        raise UserInputError(f"expected a mapping with 'class_path', got {spec!r}")
    stray = [k for k in spec if k not in SPEC_KEYS]
    if stray:
        raise UserInputError(f"{spec['class_path']}: unknown key {stray[0]!r} beside class_path (known: init_args)")
    target = import_object(spec["class_path"])
    init_args = spec.get("init_args") or {}
    _check_arguments(spec["class_path"], target, {**init_args, **extra_kwargs}, partial)
    kwargs = {k: _build_nested(v) for k, v in init_args.items()}
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
