"""Multi-label logistic regression by L-BFGS: the one fit the model's linear probes
(``training/probes.py``) and the catalog audit's out-of-fold heads (``audit/``) use."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight`` for dense or sparse ``x``."""
    return torch.sparse.mm(x, weight) if x.is_sparse else x @ weight


def fit_logistic(x: torch.Tensor, y: torch.Tensor, c: float, start: tuple[torch.Tensor, torch.Tensor],
                 max_iter: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-label logistic regression ``x [n, D]``, ``y [n, L]`` -> ``(weight [D, L], bias [L])``.

    Objective per label as liblinear's up to a factor ``1/n``: mean over albums of the
    summed binary cross-entropy plus ``|weight|^2 / (2 C n)``; the bias is not penalised.
    ``start``: the initial ``(weight, bias)`` (warm starts along a grid of C).
    """
    weight = start[0].clone().requires_grad_(True)
    bias = start[1].clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=10,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-10)
    n = max(len(y), 1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = matmul(x, weight) + bias
        loss = F.binary_cross_entropy_with_logits(logits, y, reduction="sum") / n
        loss = loss + (weight * weight).sum() / (2.0 * c * n)
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def base_rate_logits(y: torch.Tensor) -> torch.Tensor:
    """Per-label log-odds of the positives' share in ``y [n, L]`` (clipped): a fit's starting bias."""
    rate = y.mean(dim=0).clamp(1e-4, 1 - 1e-4)
    return torch.log(rate / (1 - rate))
