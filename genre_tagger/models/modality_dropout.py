"""Modality dropout: training on random subsets of each album's modalities.

It is the same mechanism as a genuinely missing modality (a presence mask), so one model
serves any subset. Every model that fuses modalities (the tagger, the joint search space,
the recommender's album encoder) drops them through here.
"""

from __future__ import annotations

import torch


def drop_modalities(present: torch.Tensor, probability: float) -> torch.Tensor:
    """Hide each present modality with ``probability``, keeping at least one per album.

    ``present [B, M]`` bool -> a subset of it; an album with nothing present stays so.
    """
    if probability <= 0:
        return present
    keep = (torch.rand(present.shape, device=present.device) >= probability) & present
    emptied = ~keep.any(dim=1) & present.any(dim=1)
    if emptied.any():
        # Give an emptied album back one of its present modalities, chosen at random.
        choice = torch.rand(present.shape, device=present.device).masked_fill(~present, -1).argmax(dim=1)
        keep[emptied, choice[emptied]] = True
    return keep
