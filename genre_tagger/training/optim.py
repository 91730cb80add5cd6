"""Learning-rate schedules named by class_path in the config's ``scheduler`` section.

A schedule is called as ``schedule(optimizer, max_epochs=...)`` once per training stage
and stepped once per epoch.
"""

from __future__ import annotations

import torch


def cosine_schedule(optimizer: torch.optim.Optimizer, max_epochs: int, final_lr_fraction: float = 0.05):
    """Cosine decay over the stage's epochs down to ``final_lr_fraction`` of the start rate."""
    base = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(max_epochs)),
                                                      eta_min=base * final_lr_fraction)
