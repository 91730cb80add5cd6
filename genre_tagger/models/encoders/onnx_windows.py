"""int8 for a filter bank exported as ``windows @ weight``, its input quantised before the copies.

A convolution written as a matrix multiplication over its input's windows (im2col, e.g.
musicnn's timbral filters, ``FrontEndBranch._conv_as_matmul``) copies each input value into
many windows. ONNX Runtime's dynamic quantisation would quantise those float32 windows (~3
million values per musicnn patch); ``WindowedInt8`` instead quantises the input once (one
scale and zero point per call, uint8), lets the slices and concatenations that build the
windows move bytes, and multiplies them with int8 weights (``MatMulInteger``), then scales
the int32 sums back to float32. The same int8 arithmetic as quantising the windows (every
input value is in some window, so the range is the same), a quarter of the memory traffic.

Weights are 7-bit per output channel (-64..63): on x86 CPUs without VNNI, ONNX Runtime's
uint8 x int8 kernels add pairs of products in 16 bits, which full-range weights can
overflow; with 7 bits they cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Ops that only move values: a window-building subgraph made of them works on uint8 as on float.
MOVES = {"Slice", "Concat", "Unsqueeze", "Squeeze", "Transpose", "Reshape", "Gather", "Identity"}
WEIGHT_LEVELS = 63  # 7-bit weights: |q| <= 63 (see the module docstring)


class WindowedInt8:
    """Rewrites every ``MatMul`` whose name contains ``marker`` (its second input a weight
    initializer ``[K, C]``, its first built from one float tensor by ``MOVES`` ops; filter
    banks that read the same tensor share its quantisation)."""

    def __init__(self, marker: str):
        self.marker = marker

    def key(self) -> Any:
        return {"windowed": self.marker, "weight_levels": WEIGHT_LEVELS}

    def apply(self, source: Path, target: Path) -> None:
        import onnx

        model = onnx.load(str(source))
        graph = model.graph
        matmuls = [n for n in graph.node if n.op_type == "MatMul" and self.marker in n.name]
        if not matmuls:
            raise RuntimeError(f"no MatMul node named *{self.marker}* to quantise in {source.name}")
        plans = [(matmul, *window_subgraph(graph, matmul.input[0])) for matmul in matmuls]
        check_only_windows_read(graph, plans)
        order = {node.name: i for i, node in enumerate(graph.node)}
        before: dict[int, list] = {}  # new nodes to insert before the node at that position
        replaced: dict[int, list] = {}  # nodes that replace the node at that position
        for tensor in dict.fromkeys(source for _, _, source in plans):
            moves = [node for _, node_moves, source in plans if source == tensor for node in node_moves]
            quantise, outputs = quantise_input(tensor, moves)
            before.setdefault(min(order[node.name] for node in moves), []).append(quantise)
            for matmul, _, source in plans:
                if source == tensor:
                    replaced[order[matmul.name]] = integer_matmul(graph, matmul, outputs)
        nodes = []
        for i, node in enumerate(graph.node):
            nodes += before.get(i, []) + replaced.get(i, [node])
        del graph.node[:]
        graph.node.extend(nodes)
        used = {name for node in graph.node for name in node.input}
        for initializer in [t for t in graph.initializer if t.name not in used]:
            graph.initializer.remove(initializer)  # the float weights of the replaced products
        onnx.save(model, str(target))


def check_only_windows_read(graph: Any, plans: list) -> None:
    """The window copies become uint8: refuse a graph where anything but the products reads them."""
    ours = {node.name for matmul, moves, _ in plans for node in [matmul, *moves]}
    copies = {out for _, moves, _ in plans for node in moves for out in node.output}
    for node in graph.node:
        if node.name not in ours and copies.intersection(node.input):
            raise RuntimeError(f"{node.name} ({node.op_type}) reads window copies that would become uint8")


def quantise_input(tensor: str, moves: list) -> tuple[Any, tuple[str, str, str]]:
    """A node quantising ``tensor`` to uint8 (one scale and zero point per call), ``moves``
    made to read it. Returns the node and the names of its values, scale and zero point."""
    from onnx import helper

    outputs = tuple(f"{tensor}_{part}" for part in ("uint8", "scale", "zero_point"))
    for node in moves:
        node.input[:] = [outputs[0] if name == tensor else name for name in node.input]
    return helper.make_node("DynamicQuantizeLinear", [tensor], list(outputs), name=f"{tensor}_quantise"), outputs


def integer_matmul(graph: Any, matmul: Any, quantised: tuple[str, str, str]) -> list:
    """The nodes that replace ``matmul`` (uint8 windows ``[.., K] @ W [K, C]``): an integer
    product with 7-bit weights per output channel (added to ``graph``'s initializers), scaled
    back to float32 under the output's name."""
    from onnx import TensorProto, helper, numpy_helper

    initializers = {t.name: t for t in graph.initializer}
    if matmul.input[1] not in initializers:
        raise RuntimeError(f"{matmul.name}: its weight is not an initializer")
    weight = numpy_helper.to_array(initializers[matmul.input[1]]).astype(np.float32)
    scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / WEIGHT_LEVELS  # [C]
    levels = np.clip(np.round(weight / scale), -WEIGHT_LEVELS - 1, WEIGHT_LEVELS).astype(np.int8)
    _, x_scale, x_zero = quantised
    name = {k: f"{matmul.name}_{k}" for k in ("weight", "weight_zero", "weight_scale", "sums", "sums_float", "scale")}
    graph.initializer.extend([numpy_helper.from_array(levels, name["weight"]),
                              numpy_helper.from_array(np.zeros(weight.shape[1], np.int8), name["weight_zero"]),
                              numpy_helper.from_array(scale.astype(np.float32), name["weight_scale"])])
    return [
        helper.make_node("MatMulInteger", [matmul.input[0], name["weight"], x_zero, name["weight_zero"]],
                         [name["sums"]], name=f"{matmul.name}_integer"),
        helper.make_node("Cast", [name["sums"]], [name["sums_float"]], to=TensorProto.FLOAT, name=f"{matmul.name}_cast"),
        helper.make_node("Mul", [x_scale, name["weight_scale"]], [name["scale"]], name=f"{matmul.name}_scales"),
        helper.make_node("Mul", [name["sums_float"], name["scale"]], [matmul.output[0]], name=f"{matmul.name}_rescale"),
    ]


def window_subgraph(graph: Any, windows: str) -> tuple[list, str]:
    """The ``MOVES`` nodes that build tensor ``windows``, and the one tensor they copy from.

    Follows data inputs only (a Slice's bounds, a Reshape's shape are not data)."""
    producer = {out: node for node in graph.node for out in node.output}
    moves, sources, stack, seen = [], set(), [windows], set()
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None or node.op_type not in MOVES:
            sources.add(name)
            continue
        if node.name in seen:
            continue
        seen.add(node.name)
        moves.append(node)
        stack.extend(node.input if node.op_type == "Concat" else node.input[:1])
    if len(sources) != 1:
        raise RuntimeError(f"the windows {windows} are built from {len(sources)} tensors, not one: {sorted(sources)}")
    return moves, sources.pop()
