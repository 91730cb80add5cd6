"""The one device chooser, for plain PyTorch loops and for Lightning Trainers."""

from __future__ import annotations

import torch


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; anything else as given."""
    if str(preference) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def lightning_accelerator(preference: str = "auto") -> str:
    """The same preference as a Lightning ``accelerator``: cpu, gpu or auto."""
    preference = str(preference)
    return "cpu" if preference == "cpu" else "gpu" if preference.startswith("cuda") else "auto"
