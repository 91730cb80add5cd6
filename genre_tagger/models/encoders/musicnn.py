"""The pretrained musicnn network as the audio encoder (frozen and cached by default).

Input: ``{"mels": [B, K, 96, 187], "crop_mask": [B, K] bool, "present": [B]}`` from
``genre_tagger.pretrained.loader.MusicnnAudioLoader``. Each real patch goes through
musicnn; the chosen layer(s) of the patches are averaged (masked) into ``[B, out_dim]``.

``layer``: one of ``penultimate`` (200), ``taggram`` (50 sigmoids), ``pooled`` (1506: max
and mean of the mid-end over time), ``mean_pool`` / ``max_pool`` (753 each), or several
joined with ``+`` (concatenated, e.g. ``penultimate+taggram``).
"""

from __future__ import annotations

import torch
from torch import nn

from genre_tagger.models.encoders.base import Encoder, encode_crops, spread_mask
from genre_tagger.pretrained.musicnn_net import LAYERS

WIDTHS = {"taggram": 50, "penultimate": 200, "pooled": 1506, "max_pool": 753, "mean_pool": 753}
# Patches per ONNX Runtime call: its memory arena keeps the largest call's activations
# (~30 MB per patch for musicnn's front end); 8 costs no speed against 64.
ONNX_CHUNK = 8


class MusicnnEncoder(Encoder):
    """musicnn (``model``: ``mtt`` or ``msd``) over an album's patches -> ``[B, out_dim]``.

    Frozen (default): eval mode, no gradients, weights rebuilt from the installed wheel
    (not stored in checkpoints), outputs cacheable. ``frozen: false`` fine-tunes the whole
    network (its weights are then stored in the checkpoint). ``chunk`` patches run at a
    time, which bounds memory whatever the album. ``max_patches``: at most that many of an
    album's patches go through the network, evenly spread over them (musicnn's ~1.4 GMAC per
    patch dominates tagging), while the loader may read more for cheaper views beside it
    (the audio descriptors of the default config read every patch). ``runtime``:
    ``onnx-int8`` (default) runs the frozen network through ONNX Runtime with its two timbral
    filter banks (four fifths of its multiply-adds) as integer products over the patch's
    windows (``onnx_windows.WindowedInt8``: the input quantised once per call, 7-bit weights),
    each patch alone (a scale of its own, so an album's embedding does not depend on its
    batch), the rest in float32: ~0.6x float32's CPU time, embedding cosine to float32
    ~0.9995; ``onnx`` all float32; ``pytorch`` eager.
    """

    modality = "audio"
    runtimes = ("pytorch", "onnx", "onnx-int8")

    def __init__(self, model: str = "msd", layer: str = "penultimate", frozen: bool = True, chunk: int = 64,
                 max_patches: int | None = None, runtime: str = "onnx-int8"):
        super().__init__(frozen=frozen)
        self.set_runtime(runtime)
        self.max_patches = None if max_patches is None else int(max_patches)
        from genre_tagger.pretrained.weights import load_musicnn

        self.layers = layer.split("+")
        unknown = [name for name in self.layers if name not in LAYERS]
        if unknown:
            raise ValueError(f"MusicnnEncoder: unknown layer {unknown[0]!r}; choose from {', '.join(LAYERS)}")
        self.model_name, self.chunk = model, int(chunk)
        self.net = load_musicnn(model)
        self.out_dim = sum(WIDTHS[name] if name != "taggram" else self.net.n_classes for name in self.layers)
        # Built frozen, the weights are the wheel's (checkpoints need not store them); built to
        # fine-tune, they are trained here and stored even after stage 1 freezes them.
        self.weights_from_package = bool(frozen)
        if frozen:
            self.freeze()

    def embed_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """``[N, 96, 187]`` -> ``[N, out_dim]``, ``chunk`` patches at a time (one at a time in int8)."""
        runtime = self.active_runtime()
        if runtime == "pytorch":
            run, chunk = MusicnnLayers(self.net, self.layers), self.chunk
        else:
            run = self._onnx_function(runtime).bound(MusicnnLayers(self.net, self.layers, as_matmul=runtime == "onnx-int8"))
            chunk = 1 if runtime == "onnx-int8" else min(self.chunk, ONNX_CHUNK)
        return torch.cat([run(patches[start:start + chunk]) for start in range(0, patches.shape[0], chunk)])

    def _onnx_function(self, runtime: str):
        if getattr(self, "_onnx", None) is None or getattr(self, "_onnx_runtime", None) != runtime:
            from genre_tagger.models.encoders.onnx_runtime import OnnxFunction
            from genre_tagger.models.encoders.onnx_windows import WindowedInt8

            # traced on a fixed example (a deterministic export); patches and frames vary. In
            # int8 the timbral filters are exported as matrix multiplications (another file).
            example = torch.linspace(0, 3, 2 * 96 * 187).reshape(2, 96, 187)
            int8 = runtime == "onnx-int8"
            name = f"musicnn-{self.model_name}-{'+'.join(self.layers)}{'-matmul' if int8 else ''}"
            self._onnx = OnnxFunction(name, ["patches"], {"patches": {0: "batch", 2: "frames"}}, (example,),
                                      quantize=WindowedInt8("timbral") if int8 else None)
            self._onnx_runtime = runtime
        return self._onnx

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = inputs["crop_mask"]
        if self.max_patches is not None:
            mask = spread_mask(mask, self.max_patches)
        return encode_crops(inputs["mels"], mask, self.embed_patches, self.out_dim)


class MusicnnLayers(nn.Module):
    """``[N, 96, T] -> [N, out_dim]``: the chosen layers of musicnn, concatenated (what is
    exported to ONNX)."""

    def __init__(self, net: nn.Module, layers: list[str], as_matmul: bool = False):
        super().__init__()
        self.net, self.layers, self.as_matmul = net, list(layers), as_matmul

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        features = self.net.features(patches, self.as_matmul)
        return torch.cat([features[name] for name in self.layers], dim=1)
