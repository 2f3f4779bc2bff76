"""Focal loss, Lin et al. 2017 (arXiv:1708.02002) eq. 5: FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
               gamma: float = 2.0) -> torch.Tensor:
    """Summed (not averaged) sigmoid focal loss; targets are 0/1 of the logits' shape.

    The caller divides by the number of foreground anchors, as the paper does.
    alpha < 0 disables the class weighting.
    """
    return focal_loss_elements(logits, targets, alpha, gamma).sum()


def focal_loss_elements(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                        gamma: float = 2.0) -> torch.Tensor:
    """The focal loss of every element, unreduced."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss
