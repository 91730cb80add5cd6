"""Deep heads for albums that lack modalities, chosen by presence pattern.

The fused head trains with modality dropout, so one model serves every subset of
modalities; but it sees each subset only now and then, and on some subsets it ranks worse
than a head trained on that subset, on others better. A ``SubsetHead`` is a head trained on
one subset: its own projections, fusion and MLP for the albums that have exactly its
modalities (training/subset_heads.py). Those albums get a blend of the two heads' logits,
``(1 - blend) * fused + blend * subset head``, and the probes' stack for their pattern on top
(training/probes.py chooses both so that the result is the average of the full model's
stacked scores and the subset model's). Albums with every modality, or with a pattern that
has no subset head, keep the fused head alone.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from genre_tagger.models.fusion import modality_tokens


def subset_key(modalities: list[str] | tuple[str, ...]) -> str:
    """A subset's name, e.g. ``"audio+text"`` (in the order given): its key in ``subset_heads``."""
    return "+".join(modalities)


class SubsetHead(nn.Module):
    """Projections of ``modalities`` (its own, or the tagger's), a fusion and an MLP head.

    ``forward(embeddings {m: [B, D_m]}, present [B, M], order, shared) -> logits [B, L]``:
    the tokens keep the tagger's layout (``order``, M columns) so that any fusion module
    works unchanged; columns outside ``modalities`` are absent. A modality without a
    projection of the head's own is projected by ``shared[m]`` (the tagger's projections).
    ``blend`` (a buffer, 0-1): this head's share of its albums' deep logits, the fused head's
    the rest (1: the head alone, as files from before blending score).
    """

    def __init__(self, modalities: list[str], projections: dict[str, nn.Module], fusion: nn.Module, head: nn.Module,
                 width: int):
        super().__init__()
        self.modalities = list(modalities)
        self.projections = nn.ModuleDict({m: projections[m] for m in self.modalities if m in projections})
        self.fusion, self.head, self.width = fusion, head, width
        self.register_buffer("blend", torch.ones(()))

    @classmethod
    def copied_from(cls, tagger: nn.Module, modalities: list[str], fresh: bool = False,
                    own_projections: bool = True) -> "SubsetHead":
        """A head that starts as ``tagger``'s (a copy of its fusion and head, and with
        ``own_projections`` of its projections), or with ``fresh``, the same architecture
        newly initialised."""
        projections = {m: copy.deepcopy(tagger.projections[m]) for m in modalities} if own_projections else {}
        head = cls(modalities, projections, copy.deepcopy(tagger.fusion), copy.deepcopy(tagger.head), tagger.width)
        if fresh:
            for module in head.modules():
                reset = getattr(module, "reset_parameters", None)
                if module is not head and callable(reset):
                    reset()
        return head

    def forward(self, embeddings: dict[str, torch.Tensor], present: torch.Tensor, order: list[str],
                shared: nn.ModuleDict | None = None) -> torch.Tensor:
        own = {name: present[:, column] for column, name in enumerate(order) if name in self.modalities}
        tokens, mask = modality_tokens(embeddings, own, order, self._projection(shared), self.width)
        return self.head(self.fusion(tokens, mask))

    def _projection(self, shared: nn.ModuleDict | None):
        return lambda name: self.projections[name] if name in self.projections else shared[name]
