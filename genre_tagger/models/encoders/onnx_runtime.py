"""ONNX Runtime for frozen encoders: exported from the encoder's own weights, cached, run on a CPU.

A frozen encoder on the CPU may run its network through ONNX Runtime instead of PyTorch
eager (``runtime: onnx``, or ``onnx-int8`` where dynamic int8 quantisation of the linear
layers keeps quality): the module is exported with ``torch.onnx.export`` on first use, from
the weights in memory, and the file is kept under ``onnx_cache_dir()`` keyed by a hash of
those weights and of everything that shapes the file (export code, opset, torch and
onnxruntime versions, quantisation). Nothing is downloaded. The file's name ends with its
own SHA-256, checked on every load: a damaged file is rebuilt, with a message. Files are
written to a temporary name and moved into place, so processes building at once never see
a partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

RUNTIMES = ("pytorch", "onnx", "onnx-int8")
EXPORT_VERSION = 2  # bump when the export or quantisation settings below change
OPSET = 17
CACHE_ENV = "GENRE_TAGGER_ONNX_CACHE"


def check_runtime(runtime: str, allowed: tuple[str, ...], owner: str) -> str:
    """``runtime`` when ``owner`` supports it, else a ValueError naming the choices."""
    if runtime not in allowed:
        raise ValueError(f"{owner}: runtime {runtime!r} is not one of {', '.join(allowed)}")
    return runtime


def onnx_cache_dir() -> Path:
    """Where exported files live: ``$GENRE_TAGGER_ONNX_CACHE``, else the user's cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/genre_tagger/onnx``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genre_tagger" / "onnx"


def module_digest(module: nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers, by name."""
    hasher = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        hasher.update(name.encode())
        hasher.update(str(tuple(tensor.shape)).encode())
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _say(message: str) -> None:
    from genre_tagger.runs.ranks import say  # lazily: the runs package imports Lightning

    say(message)


class DynamicInt8:
    """ONNX Runtime's dynamic quantisation: the weights of ``ops`` nodes int8 per output channel,
    their activations quantised on the fly with one scale per call."""

    def __init__(self, ops: tuple[str, ...] = ("MatMul",)):
        self.ops = tuple(ops)

    def key(self) -> Any:
        """What names the quantised file (with everything else that shapes it)."""
        return list(self.ops)

    def apply(self, source: Path, target: Path) -> None:
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        # The quantiser logs advice (pre-process the model for static quantisation) on the root
        # logger, where a user tagging for the first time would read it as a problem.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=list(self.ops))
        finally:
            root.setLevel(level)


class OnnxFunction:
    """A module's ``forward(*tensors) -> tensor`` run by ONNX Runtime on the CPU.

    ``name`` names the files; ``input_names`` the forward's arguments, in order;
    ``dynamic_axes`` ``{input: {axis: name}}`` the axes that vary; ``example`` small inputs to
    trace with (fixed, so that the export is deterministic); ``quantize``: how the float32
    export becomes int8 (``key()`` for the file's name, ``apply(source, target)``), or None;
    ``disabled_optimizers``: ONNX Runtime graph fusions not to apply to this network. The
    session is opened on first call, again when the module's weights change and in a forked
    process; it is not pickled.
    """

    def __init__(self, name: str, input_names: list[str], dynamic_axes: dict[str, dict[int, str]],
                 example: tuple[torch.Tensor, ...], quantize: Any = None, disabled_optimizers: tuple[str, ...] = ()):
        self.name, self.input_names, self.dynamic_axes = name, list(input_names), dynamic_axes
        self.example, self.quantize, self.disabled_optimizers = example, quantize, tuple(disabled_optimizers)
        self._session: Any = None
        self._stamp: tuple | None = None
        self.path: Path | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_session": None, "_stamp": None}

    def __call__(self, module: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        return self.bound(module)(*inputs)

    def bound(self, module: nn.Module) -> Callable[..., torch.Tensor]:
        """``module``'s forward on the session for its current weights, checked once: for many
        calls in a row (an album batch's text windows; the check costs ~0.4 ms on MiniLM)."""
        # the pid too: ONNX Runtime sessions are not fork-safe, so a forked DataLoader worker opens its own
        stamp = (os.getpid(), _weights_stamp(module))
        if self._session is None or stamp != self._stamp:
            self._session, self._stamp = self._open(module), stamp
        session, names = self._session, self.input_names

        def run(*inputs: torch.Tensor) -> torch.Tensor:
            feeds = {name: value.detach().cpu().numpy() for name, value in zip(names, inputs)}
            return torch.from_numpy(session.run(None, feeds)[0])
        return run

    def file_prefix(self, weights: str, quantize: Any) -> str:
        """What names the exported file: the weights' digest and everything that shapes the export."""
        import onnxruntime

        payload = {"weights": weights, "name": self.name, "inputs": self.input_names,
                   "axes": self.dynamic_axes, "quantize": quantize.key() if quantize else [], "version": EXPORT_VERSION,
                   "opset": OPSET, "torch": torch.__version__.split("+")[0], "onnxruntime": onnxruntime.__version__,
                   "example": [list(t.shape) for t in self.example]}
        key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
        return f"{self.name}{'-int8' if quantize else ''}-{key}"

    def _open(self, module: nn.Module) -> Any:
        folder, weights = onnx_cache_dir(), module_digest(module)
        prefix = self.file_prefix(weights, self.quantize)
        path = self._valid_file(folder, prefix)
        if path is None:
            path = self._build(module, folder, weights)
        try:
            session = _session(path, self.disabled_optimizers)
        except Exception as err:  # a file that passed its checksum yet does not load: rebuild once
            _say(f"the exported {self.name} model {path} does not load ({str(err).splitlines()[0]}); rebuilding it")
            path.unlink(missing_ok=True)
            path = self._build(module, folder, weights)
            session = _session(path, self.disabled_optimizers)
        self.path = path
        return session

    def _valid_file(self, folder: Path, prefix: str) -> Path | None:
        """The cached file whose content matches the SHA-256 in its name; damaged ones removed."""
        for path in sorted(folder.glob(f"{prefix}-*.onnx")):
            if _file_digest(path).startswith(path.stem.rsplit("-", 1)[1]):
                return path
            _say(f"the exported {self.name} model {path} is damaged (its SHA-256 does not match); rebuilding it")
            path.unlink(missing_ok=True)
        return None

    def _build(self, module: nn.Module, folder: Path, weights: str) -> Path:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return self._write(module, folder, weights)
        except OSError as err:
            from genre_tagger.errors import UserInputError

            raise UserInputError(f"cannot write the exported {self.name} model under {folder} ({err}); set "
                                 f"{CACHE_ENV} to a writable folder, or runtime: pytorch") from None

    def _write(self, module: nn.Module, folder: Path, weights: str) -> Path:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".building-") as work:
            exported = Path(work) / "model.onnx"
            if self.quantize:
                # quantised from the float32 export of the same weights when one is cached
                exported = self._valid_file(folder, self.file_prefix(weights, None)) or exported
                if not exported.is_file():
                    self._export(module, exported)
                quantized = Path(work) / "model.int8.onnx"
                self.quantize.apply(exported, quantized)
                exported = quantized
            else:
                self._export(module, exported)
            final = folder / f"{self.file_prefix(weights, self.quantize)}-{_file_digest(exported)[:16]}.onnx"
            os.replace(exported, final)  # atomic: a reader sees the whole file or none
        return final

    def _export(self, module: nn.Module, path: Path) -> None:
        modes = [(part, part.training) for part in module.modules()]  # put back as they were
        module.eval()
        try:
            # stdout is for results: the exporter may print diagnostics
            with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
                warnings.simplefilter("ignore")
                torch.onnx.export(module, self.example, str(path), dynamo=False, opset_version=OPSET,
                                  input_names=self.input_names, output_names=["output"],
                                  dynamic_axes={**self.dynamic_axes, "output": {0: "batch"}})
        finally:
            for part, training in modes:
                part.training = training


def _weights_stamp(module: nn.Module) -> tuple:
    """Cheap identity of the weights' current values: storage and in-place version per tensor
    (``load_state_dict`` and optimiser steps bump the version)."""
    return tuple((t.data_ptr(), t._version) for t in itertools.chain(module.parameters(), module.buffers()))


def _session(path: Path, disabled_optimizers: tuple[str, ...] = ()) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # The process's torch thread budget (torch.set_num_threads, OMP_NUM_THREADS) holds for ORT too.
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The memory arena stays (without it, 1.2-1.6x the CPU time), but without memory patterns:
    # with inputs of varying shapes they kept adding blocks (+4.2 GB after two batches of 32
    # MuMu-like albums through the three encoders, +2.5 GB without; the callers bound the
    # largest batch, e.g. musicnn's ONNX_CHUNK).
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(disabled_optimizers) or None)

