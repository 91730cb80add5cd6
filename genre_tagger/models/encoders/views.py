"""Several encoders for one modality, concatenated: ``MultiView``; and fitting fitted views.

A learned view (MelCNN, MiniLM, EfficientNet) and a cheap one (descriptors, tf-idf) read
the same collated batch of one modality; the modality's embedding is their concatenation
``[B, sum D_v]``, so the cache, the ablation and the missing-modality machinery see one
encoder per modality as before. Package weights of frozen views stay out of the state
dict (checkpoints, cache fingerprints); trained and fitted views' state stays in.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from genre_tagger.models.encoders.base import Encoder, build_encoder


class MultiView(Encoder):
    """``views``: ``{name: class_path spec}`` of encoders of one modality -> concatenation.

    ``view_dims`` gives each view's width, in order. Frozen when every view is; stage 1
    trains the non-frozen views with the others as fixed inputs beside them.
    """

    def __init__(self, views: dict[str, dict], frozen: bool | None = None):
        built = {name: build_encoder(spec) for name, spec in views.items()}
        self.view_specs = dict(views)
        super().__init__(frozen=all(v.frozen for v in built.values()) if frozen is None else frozen)
        self.views = nn.ModuleDict(built)
        self.modality = next(iter(built.values())).modality
        self.view_dims = [v.out_dim for v in built.values()]
        self.out_dim = sum(self.view_dims)
        self.needs_fit = any(getattr(v, "needs_fit", False) for v in built.values())
        self.weights_from_package = all(v.weights_from_package and v.frozen for v in built.values())
        self._register_state_dict_hook(_drop_package_weights)
        self.register_load_state_dict_post_hook(_ignore_package_weights)
        if self.frozen:
            self.freeze()

    def package_views(self) -> list[str]:
        """Views whose weights any machine rebuilds from an installed package."""
        return [n for n, v in self.views.items() if v.frozen and v.weights_from_package and list(v.state_dict())]

    def freeze(self) -> None:
        """Freeze every view (after stage 1 trained the learned ones): all become cacheable."""
        for view in self.views.values():
            view.freeze()
        super().freeze()

    def cache_parts(self) -> list[Encoder]:
        """The views in order, when every view is frozen: the embedding cache then stores each
        view under its own fingerprint (features/extract.py)."""
        if not all(v.frozen for v in self.views.values()):
            raise RuntimeError("MultiView: only frozen views are cached")
        return list(self.views.values())

    def fit(self, batches: list[dict[str, torch.Tensor]]) -> None:
        for view in self.views.values():
            if getattr(view, "needs_fit", False):
                view.fit(batches)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([view.encode(inputs).float() for view in self.views.values()], dim=1)


def _drop_package_weights(module: MultiView, state: dict, prefix: str, local_metadata: Any) -> None:
    for name in module.package_views():
        for key in [k for k in state if k.startswith(f"{prefix}views.{name}.")]:
            del state[key]


def _ignore_package_weights(module: MultiView, incompatible: Any) -> None:
    marks = [f"views.{name}." for name in module.package_views()]
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not any(m in k for m in marks)]


def fit_views(encoders: dict[str, Encoder], loaders: dict, records: list, batch_size: int = 64,
              progress: bool = False) -> list[str]:
    """``encoder.fit(batches)`` for each encoder that needs fitting, on ``records`` (the
    training albums) decoded by its modality's loader. Returns the modalities fitted."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from genre_tagger.data.dataset import AlbumCollator, AlbumDataset

    fitted = []
    for modality, encoder in encoders.items():
        if not getattr(encoder, "needs_fit", False):
            continue
        loader = {modality: loaders[modality]}
        data = DataLoader(AlbumDataset(records, loader), batch_size=batch_size, collate_fn=AlbumCollator(loader))
        batches: Iterable = tqdm(data, desc=f"fitting {modality} views", unit="batch", disable=not progress)
        encoder.fit([batch[modality] for batch in batches])
        fitted.append(modality)
    return fitted
