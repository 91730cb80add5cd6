"""The one encoder interface shared by every modality (timm-style pooled features)."""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn

from genre_tagger.config import instantiate


class Encoder(nn.Module):
    """A modality encoder: ``forward(inputs) -> [B, out_dim]``.

    ``inputs`` is the dict a ``ModalityLoader.collate`` made (it always holds
    ``"present"``: ``[B]`` bool). Rows that are not present may hold anything; fusion
    masks them out. ``frozen`` encoders never train and run under no_grad, which makes
    their outputs cacheable. ``weights_from_package`` marks frozen weights that any
    machine can rebuild from an installed package, so checkpoints need not store them.
    ``sparse_output`` marks mostly-zero outputs (tf-idf): linear probes scale them per view.
    ``runtime`` (``runtimes`` lists those an encoder offers): ``pytorch``, or ``onnx`` /
    ``onnx-int8`` to run a frozen encoder's network through ONNX Runtime while it sits on the
    CPU (``active_runtime``; on a GPU, or while it trains, PyTorch runs it).
    """

    modality: str = ""
    out_dim: int = 0
    weights_from_package: bool = False
    sparse_output: bool = False
    build_spec: dict | None = None  # the class_path spec it was built from (``build_encoder``)
    runtimes: tuple[str, ...] = ("pytorch",)
    runtime: str = "pytorch"

    def __init__(self, frozen: bool = False):
        super().__init__()
        self.frozen = frozen

    def freeze(self) -> None:
        """Stop training this encoder (eval mode, no gradients): its outputs become cacheable."""
        self.frozen = True
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "Encoder":
        # A frozen encoder stays in eval mode (batch-norm statistics, dropout) always.
        return super().train(mode and not self.frozen)

    def set_runtime(self, runtime: str) -> None:
        """Choose the runtime of the frozen network (one of ``runtimes``)."""
        from genre_tagger.models.encoders.onnx_runtime import check_runtime

        self.runtime = check_runtime(runtime, self.runtimes, type(self).__name__)

    def active_runtime(self) -> str:
        """The runtime ``forward`` uses now: ``runtime`` for a frozen encoder on the CPU, else
        ``pytorch`` (training, fine-tuning and GPUs stay on PyTorch)."""
        if self.runtime == "pytorch" or not self.frozen:
            return "pytorch"
        weight = next(self.parameters(), None)
        return self.runtime if weight is None or weight.device.type == "cpu" else "pytorch"

    def spec(self) -> dict[str, Any]:
        """What this encoder is, for cache fingerprints: the spec it was built from, else its
        class alone (the fingerprint then always hashes its weights too); and the runtime it
        runs on now when that is not PyTorch, so that embeddings of different runtimes (float32,
        int8) never share a cache entry. PyTorch's spec is the one caches were keyed by before."""
        if self.build_spec is not None:
            spec = copy.deepcopy(self.build_spec)
            if isinstance(spec.get("init_args"), dict):
                spec["init_args"].pop("runtime", None)
        else:
            spec = {"class_path": f"{type(self).__module__}.{type(self).__qualname__}"}
        if self.active_runtime() != "pytorch":
            spec["runtime"] = self.active_runtime()
        return spec

    def encode(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``forward`` under no_grad when frozen. Returns ``[B, out_dim]``."""
        if self.frozen:
            with torch.no_grad():
                return self(inputs)
        return self(inputs)


def build_encoder(spec: dict) -> Encoder:
    """The edge where an encoder's ``class_path`` spec becomes the encoder; it keeps the spec."""
    encoder = instantiate(spec)
    encoder.build_spec = copy.deepcopy(spec)
    return encoder


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``values`` over ``dim`` where ``mask`` is true; 0 where nothing is.

    ``mask`` has the shape of ``values`` without its trailing feature dimension.
    """
    weights = mask.to(values.dtype).unsqueeze(-1)
    total = (values * weights).sum(dim=dim)
    count = weights.sum(dim=dim).clamp(min=1.0)
    return total / count


def spread_mask(crop_mask: torch.Tensor, k: int) -> torch.Tensor:
    """At most ``k`` of each album's real crops, evenly spread over them: ``[B, C]`` bool.

    The r-th real crop (r = 0..n-1) is kept when r = floor((j + 1/2) n / k) for some j < k,
    so every crop is kept when n <= k, and the loader's track order spreads the kept ones
    over the album's tracks.
    """
    rank = crop_mask.long().cumsum(dim=1) - 1  # [B, C]: position among the album's real crops
    count = crop_mask.sum(dim=1, keepdim=True)  # [B, 1]
    targets = ((torch.arange(k, device=crop_mask.device) + 0.5) * count / k).floor().long()  # [B, k]
    return crop_mask & (rank.unsqueeze(-1) == targets.unsqueeze(1)).any(dim=-1)


def encode_crops(mels: torch.Tensor, crop_mask: torch.Tensor, embed: Callable[[torch.Tensor], torch.Tensor],
                 out_dim: int) -> torch.Tensor:
    """Album embeddings ``[B, out_dim]`` from crops ``[B, C, ...]`` and ``crop_mask [B, C]``.

    Only real crops go through ``embed`` (``[N, ...] -> [N, out_dim]``): padding would waste
    compute and skew batch norm; their mean over each album's crops is the album's embedding.
    """
    batch, n_crops = crop_mask.shape
    crop_embeddings = mels.new_zeros(batch, n_crops, out_dim)
    if crop_mask.any():
        crop_embeddings[crop_mask] = embed(mels[crop_mask]).to(mels.dtype)
    return masked_mean(crop_embeddings, crop_mask, dim=1)
