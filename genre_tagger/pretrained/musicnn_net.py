"""musicnn (Pons & Serra, 2019) in PyTorch: the network that the ``musicnn`` wheel's weights fit.

Input: log-mel patches ``[N, 96, 187]`` (mel bands x frames; see ``musicnn_audio``).

- Front end, "musically motivated": batch norm of the input (one scalar channel), then
  timbral filters that span 7 frames and 38 or 67 mel bands (40% / 70% of the spectrum;
  204 maps each, time padded by 3 on both sides, no padding in frequency) and temporal
  filters that span 1 band and 128 / 64 / 32 frames (51 maps each, TensorFlow "same"
  padding: the odd extra frame goes at the end). Each: conv -> ReLU -> batch norm -> max
  over frequency. Concatenated: ``[N, 561, T]``.
- Mid end, dense: three 1-D convolutions over time (64 maps, width 7, padding 3), each
  conv -> ReLU -> batch norm, the second and third with a residual connection; the front
  end and the three outputs are concatenated: ``[N, 753, T]``.
- Back end: max and mean over time, interleaved per channel (TensorFlow flattens
  ``[753, 2]``) -> ``[N, 1506]`` -> batch norm -> (dropout 0.5) -> dense 200 -> ReLU ->
  batch norm = the *penultimate* layer -> (dropout 0.5) -> dense 50 = logits.

TensorFlow-1 details kept: batch-norm epsilon 1e-3, conv kernels stored ``[H, W, in, out]``
with H = time and W = frequency, dense kernels ``[in, out]``. Variable names in the
checkpoint follow layer creation order (``conv2d``, ``conv2d_1``, ... ``batch_normalization_10``,
``dense``, ``dense_1``); ``load_tf_weights`` maps each one exactly once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

TF_BN_EPS = 1e-3
N_MELS = 96
N_FRAMES = 187
TIMBRAL_HEIGHTS = (int(0.4 * N_MELS), int(0.7 * N_MELS))  # 38, 67 mel bands
TEMPORAL_WIDTHS = (128, 64, 32)  # frames
FRONT_TIMBRAL, FRONT_TEMPORAL = int(1.6 * 128), int(1.6 * 32)  # 204, 51 maps
FRONT_DIM = 2 * FRONT_TIMBRAL + 3 * FRONT_TEMPORAL  # 561
LAYERS = ("taggram", "penultimate", "pooled", "max_pool", "mean_pool")


def tf_batch_norm(channels: int) -> nn.BatchNorm1d:
    # momentum 0.01 in PyTorch's convention is TensorFlow's default decay of 0.99
    return nn.BatchNorm1d(channels, eps=TF_BN_EPS, momentum=0.01)


class FrontEndBranch(nn.Module):
    """conv2d -> ReLU -> batch norm -> max over frequency: ``[N, 1, 96, T] -> [N, C, T]``.

    ``pad`` is (time before, time after); frequency is never padded.

    In eval mode the batch norm is a per-map affine ``a * v + b`` and ReLU is monotone, so
    the max over frequency is taken first, on the conv's output, and the ReLU and the norm
    run on ``[N, C, T]`` instead of the whole map: where ``a < 0`` the max of ``a * relu(y)``
    is ``a * relu(min y)``, so those maps' filters are negated and their max negated back
    (most of the published front end's maps have ``a < 0``). The same values up to float
    rounding, ~10 % less CPU for the network on ONNX Runtime.

    ``as_matmul`` (eval only; for the int8 ONNX export) computes a many-band filter as one
    matrix multiplication over the input's windows (im2col), a node that the export turns into
    an integer product (``models/encoders/onnx_windows.py``); as a convolution it stays float32.
    """

    def __init__(self, channels: int, bands: int, frames: int, pad: tuple[int, int]):
        super().__init__()
        self.pad = pad
        self.conv = nn.Conv2d(1, channels, (bands, frames))
        self.norm = nn.BatchNorm2d(channels, eps=TF_BN_EPS, momentum=0.01)

    def forward(self, x: torch.Tensor, as_matmul: bool = False) -> torch.Tensor:
        x = F.pad(x, (self.pad[0], self.pad[1], 0, 0))
        if self.training:  # the norm's batch statistics need the whole map
            y = self._conv(x, self.conv.weight, self.conv.bias)
            return self.norm(F.relu(y.transpose(1, 2) if self._one_band else y)).amax(dim=2)
        scale = self.norm.weight / torch.sqrt(self.norm.running_var + self.norm.eps)  # [C]
        shift = self.norm.bias - self.norm.running_mean * scale
        sign = torch.where(scale < 0, -1.0, 1.0)  # [C]
        conv = self._conv_as_matmul if as_matmul and not self._one_band else self._conv
        y = conv(x, self.conv.weight * sign[:, None, None, None], self.conv.bias * sign)
        # [N, C, T]: the max over bands, or the min where the norm's scale is negative
        extreme = y.amax(dim=1 if self._one_band else 2) * sign[:, None]
        return F.relu(extreme) * scale[:, None] + shift[:, None]

    @property
    def _one_band(self) -> bool:
        return self.conv.kernel_size[0] == 1

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``[N, 1, 96, T + pad]`` -> ``[N, C, bands', T]``, or ``[N, 96, C, T]`` for one-band filters."""
        if not self._one_band:
            return F.conv2d(x, weight, bias)
        # The same 1-D filters over every band's row, as one conv1d over N*96 rows (faster
        # on CPU than a 2-D conv with one input channel).
        n, _, bands, frames = x.shape
        y = F.conv1d(x.reshape(n * bands, 1, frames), weight.flatten(1).unsqueeze(1), bias)
        return y.reshape(n, bands, -1, y.shape[-1])

    @staticmethod
    def _conv_as_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """A many-band ``_conv`` as ``windows @ weight``: ``[N, 1, 96, T + pad]`` -> ``[N, C, bands', T]``.
        The windows ``[N, bands', T, kb * kt]`` are copied out of the input laid out
        ``[N, T, 96 * kt]`` (each band's kt frames side by side), where every output band's
        window is a run of ``kb * kt`` neighbouring values. (One-band filters stay convolutions:
        as int8 windows they were slower and drifted more, docs/experiments.md.)"""
        n, _, bands, frames = x.shape
        channels, _, kb, kt = weight.shape
        steps, band_steps = frames - kt + 1, bands - kb + 1
        shifted = torch.stack([x[:, 0, :, k:k + steps] for k in range(kt)], dim=-1)  # [N, 96, T, kt]
        rows = shifted.permute(0, 2, 1, 3).reshape(n, steps, bands * kt)
        windows = torch.stack([rows[:, :, b * kt:(b + kb) * kt] for b in range(band_steps)], dim=1)
        y = windows @ weight.reshape(channels, kb * kt).t() + bias  # [N, bands', T, C]
        return y.permute(0, 3, 1, 2)

class MidEndLayer(nn.Module):
    """conv1d (width 7, padding 3) -> ReLU -> batch norm: ``[N, C_in, T] -> [N, 64, T]``."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, channels, 7, padding=3)
        self.norm = tf_batch_norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.conv(x)))


class MusicnnNet(nn.Module):
    """musicnn: ``forward(patches [N, 96, T]) -> logits [N, n_classes]``; ``features`` gives every layer.

    T is 187 for the published models (3 s); the network accepts other lengths as the
    original does (global pooling over time).
    """

    def __init__(self, n_classes: int = 50, midend_channels: int = 64, backend_units: int = 200):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1, eps=TF_BN_EPS, momentum=0.01)
        self.timbral = nn.ModuleList(
            FrontEndBranch(FRONT_TIMBRAL, bands, 7, (3, 3)) for bands in TIMBRAL_HEIGHTS)
        self.temporal = nn.ModuleList(
            FrontEndBranch(FRONT_TEMPORAL, 1, w, ((w - 1) // 2, w - 1 - (w - 1) // 2)) for w in TEMPORAL_WIDTHS)
        self.midend = nn.ModuleList([MidEndLayer(FRONT_DIM, midend_channels)]
                                    + [MidEndLayer(midend_channels, midend_channels) for _ in range(2)])
        self.midend_dim = FRONT_DIM + 3 * midend_channels  # 753
        self.pool_norm = tf_batch_norm(2 * self.midend_dim)
        self.dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(2 * self.midend_dim, backend_units)
        self.dense_norm = tf_batch_norm(backend_units)
        self.output = nn.Linear(backend_units, n_classes)
        self.n_classes, self.backend_units = n_classes, backend_units

    def midend_features(self, patches: torch.Tensor, as_matmul: bool = False) -> torch.Tensor:
        """``[N, 96, T]`` -> the densely connected feature map ``[N, 753, T]`` (``as_matmul``:
        the timbral filters as matrix multiplications, ``FrontEndBranch``)."""
        x = self.input_norm(patches.unsqueeze(1))
        front = torch.cat([branch(x, as_matmul) for branch in (*self.timbral, *self.temporal)], dim=1)
        first = self.midend[0](front)
        second = self.midend[1](first) + first
        third = self.midend[2](second) + second
        return torch.cat([front, first, second, third], dim=1)

    def features(self, patches: torch.Tensor, as_matmul: bool = False) -> dict[str, torch.Tensor]:
        """Every named layer for ``[N, 96, T]`` patches: ``max_pool``/``mean_pool`` ``[N, 753]``,
        ``pooled`` ``[N, 1506]`` (interleaved, as the back end sees it), ``penultimate``
        ``[N, 200]``, ``logits`` and ``taggram`` (sigmoid) ``[N, n_classes]``."""
        feature_map = self.midend_features(patches, as_matmul)
        max_pool, mean_pool = feature_map.amax(dim=2), feature_map.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        penultimate = self.dense_norm(F.relu(self.dense(self.dropout(self.pool_norm(pooled)))))
        logits = self.output(self.dropout(penultimate))
        return {"max_pool": max_pool, "mean_pool": mean_pool, "pooled": pooled,
                "penultimate": penultimate, "logits": logits, "taggram": torch.sigmoid(logits)}

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.features(patches)["logits"]


# --------------------------------------------------------------------------- TF weights


def _conv2d(kernel: np.ndarray) -> np.ndarray:
    """TF ``[time, freq, in, out]`` -> torch ``[out, in, freq, time]``."""
    return kernel.transpose(3, 2, 1, 0)


def _midend_conv(kernel: np.ndarray) -> np.ndarray:
    """TF ``[7, C_in, 1, out]`` (a 2-D conv spanning all channels) -> torch conv1d ``[out, C_in, 7]``."""
    return kernel[:, :, 0, :].transpose(2, 1, 0)


def tf_variable_map(net: MusicnnNet) -> dict[str, tuple[torch.Tensor, object]]:
    """Checkpoint variable name -> (the tensor it fills, layout transform or None)."""
    mapping: dict[str, tuple[torch.Tensor, object]] = {}
    norms = [net.input_norm, *(b.norm for b in (*net.timbral, *net.temporal)),
             *(m.norm for m in net.midend), net.pool_norm, net.dense_norm]
    for i, norm in enumerate(norms):
        scope = "batch_normalization" + (f"_{i}" if i else "")
        for tf_name, tensor in (("gamma", norm.weight), ("beta", norm.bias),
                                ("moving_mean", norm.running_mean), ("moving_variance", norm.running_var)):
            mapping[f"{scope}/{tf_name}"] = (tensor, None)
    convs = [(b.conv, _conv2d) for b in (*net.timbral, *net.temporal)] + [(m.conv, _midend_conv) for m in net.midend]
    for i, (conv, transform) in enumerate(convs):
        scope = "conv2d" + (f"_{i}" if i else "")
        mapping[f"{scope}/kernel"] = (conv.weight, transform)
        mapping[f"{scope}/bias"] = (conv.bias, None)
    for scope, layer in (("dense", net.dense), ("dense_1", net.output)):
        mapping[f"{scope}/kernel"] = (layer.weight, np.transpose)
        mapping[f"{scope}/bias"] = (layer.bias, None)
    return mapping


def is_optimizer_slot(name: str) -> bool:
    """Adam's moment estimates and step powers, saved beside the weights."""
    return name.endswith(("/Adam", "/Adam_1")) or name in ("beta1_power", "beta2_power")


def load_tf_weights(net: MusicnnNet, variables: dict[str, np.ndarray]) -> None:
    """Fill ``net`` from checkpoint variables; every model variable must be used exactly once.

    Raises ValueError naming missing, unexpected or misshapen variables.
    """
    mapping = tf_variable_map(net)
    model_vars = {k: v for k, v in variables.items() if not is_optimizer_slot(k)}
    missing, unexpected = sorted(set(mapping) - set(model_vars)), sorted(set(model_vars) - set(mapping))
    if missing or unexpected:
        raise ValueError(f"musicnn checkpoint does not fit the network: missing {missing[:4]}, unexpected {unexpected[:4]}")
    filled: set[int] = set()
    with torch.no_grad():
        for name, (tensor, transform) in mapping.items():
            value = np.ascontiguousarray(transform(model_vars[name]) if transform else model_vars[name])
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(f"musicnn checkpoint: {name} has shape {list(value.shape)}, "
                                 f"the network expects {list(tensor.shape)}")
            tensor.copy_(torch.from_numpy(value.astype(np.float32)))
            filled.add(id(tensor))
    expected = {id(t) for t in (*net.parameters(), *(b for n, b in net.named_buffers() if "num_batches" not in n))}
    if filled != expected:  # every parameter and statistic came from the checkpoint, once
        raise ValueError("musicnn checkpoint: some network tensors were not filled")
