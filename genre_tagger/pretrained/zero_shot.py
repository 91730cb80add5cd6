"""Zero-shot tagging: ``--checkpoint pretrained:musicnn-mtt`` / ``pretrained:musicnn-msd``.

``load_pretrained`` returns an ordinary ``TaggerBundle`` (model, loaders, labels,
thresholds), so ``tag`` and ``evaluate`` treat it as any checkpoint: resuming, output
formats, warnings, albums without audio -> ``status: error``. Its model runs musicnn on
every patch of every track (``MusicnnAudioLoader(patches_per_track=None)``) and returns,
as logits, ``logit(mean of the patches' sigmoids)``: the scores that ``tag`` writes are
exactly musicnn's clip-level tag likelihoods (``musicnn.tagger.top_tags``), pooled over
the album's tracks.

Thresholds: musicnn publishes none. ``genres`` lists the tags whose score reaches
``THRESHOLD`` (one value for all 50 tags; ``--threshold`` overrides it). See README.
"""

from __future__ import annotations

import torch
from torch import nn

PREFIX = "pretrained:"
THRESHOLD = 0.2
MODEL_NAMES = ("musicnn-mtt", "musicnn-msd")


def is_pretrained(checkpoint: object) -> bool:
    return str(checkpoint).startswith(PREFIX)


class ZeroShotTagger(nn.Module):
    """``forward({"audio": batch}) -> logits [B, 50]`` with ``sigmoid(logits)`` = the mean taggram.

    Duck-types the parts of ``GenreTagger`` that inference uses (``modalities``,
    ``encoders``, ``n_labels``, ``input_widths``, ``embed``, ``logits_from_embeddings``, ``forward``).
    """

    def __init__(self, encoder: nn.Module, n_labels: int):
        super().__init__()
        self.modalities = ["audio"]
        self.encoders = nn.ModuleDict({"audio": encoder})
        self.n_labels = n_labels

    @property
    def input_widths(self) -> dict[str, int]:
        return {"audio": self.encoders["audio"].out_dim}

    def embed(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        return {"audio": self.encoders["audio"].encode(batch["audio"])}, {"audio": batch["audio"]["present"]}

    def logits_from_embeddings(self, embeddings: dict, present: dict) -> torch.Tensor:
        probabilities = embeddings["audio"].double().clamp(1e-7, 1 - 1e-7)
        return (torch.log(probabilities) - torch.log1p(-probabilities)).float()

    def forward(self, batch: dict) -> torch.Tensor:
        return self.logits_from_embeddings(*self.embed(batch))


def load_pretrained(checkpoint: str, device: str | torch.device = "cpu"):
    """``pretrained:musicnn-mtt`` -> a ``TaggerBundle`` tagging with musicnn's own 50 tags."""
    import numpy as np

    from genre_tagger.bundle import TaggerBundle
    from genre_tagger.errors import UserInputError
    from genre_tagger.models.encoders.base import build_encoder
    from genre_tagger.pretrained.loader import MusicnnAudioLoader
    from genre_tagger.pretrained.weights import model_info

    name = str(checkpoint)[len(PREFIX):]
    if name not in MODEL_NAMES:
        raise UserInputError(f"unknown pretrained model {checkpoint!r}; choose "
                             + " or ".join(PREFIX + n for n in MODEL_NAMES))
    info = model_info(name)
    key = name.removeprefix("musicnn-")
    # float32: the scores are musicnn's own outputs, with no trained head to absorb int8's drift
    spec = {"class_path": "genre_tagger.models.encoders.musicnn.MusicnnEncoder",
            "init_args": {"model": key, "layer": "taggram", "frozen": True, "runtime": "onnx"}}
    encoder = build_encoder(spec)
    loader = MusicnnAudioLoader(patches_per_track=None, max_tracks=64)
    model = ZeroShotTagger(encoder, len(info.labels)).to(device).eval()
    config = {
        "pretrained": {"name": name, "dataset": info.dataset, "source": "musicnn==0.1.0 (ISC)"},
        "modalities": ["audio"],
        "data": {"loaders": {"audio": loader.spec()}},
        "model": {"encoders": {"audio": spec}},
    }
    thresholds = np.full(len(info.labels), THRESHOLD, dtype=np.float32)
    return TaggerBundle(model, {"audio": loader}, list(info.labels), thresholds, config)
