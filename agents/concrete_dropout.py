"""Concrete Dropout (Gal, Hron & Kendall 2017, arXiv:1705.07832): a dropout rate learned by
gradient descent through a continuous relaxation of the Bernoulli mask.

Masks are built from uniform noise u in (0, 1), one number per unit, so the caller can hold the
noise (a whole episode, or the same draw for online and target network) while the rate p moves:
  relaxed (training):  drop = sigmoid((logit p + logit u) / t)      (paper eq. 5, t = temperature)
  hard (acting):       drop = 1[u > 1 - p]                           (the t -> 0 limit of the same u)
and the kept units are scaled by 1 / (1 - p) (inverted dropout, so "dropout off" needs no rescale).

The paper's KL term for a layer fed by dropped inputs of width K, with weights M in the paper's
convention (y = (x * z) M, no rescale) and prior length scale l, is
  KL ~= l^2 (1 - p) / 2 * ||M||^2  -  K * H(p),      H(p) = -p log p - (1 - p) log(1 - p),
divided by tau * N (model precision tau, N data points) next to a per-point loss of 0.5 * error^2.
Our layer rescales by 1/(1-p), so M = W / (1 - p) and the weight term is l^2 ||W||^2 / (2 (1 - p)).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def concrete_keep_mask(u: torch.Tensor, p: torch.Tensor, temperature: float,
                       logit_p: torch.Tensor | None = None) -> torch.Tensor:
    """Relaxed keep mask 1 - z~ (paper eq. 5), differentiable in p; not yet rescaled."""
    if logit_p is None:
        logit_p = torch.logit(p, 1e-7)
    return torch.sigmoid((logit_p + torch.logit(u, 1e-7)) / -temperature)  # = 1 - sigmoid(x / t)


def hard_keep_mask(u: torch.Tensor, p: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Bernoulli(1 - p) keep mask from the same noise: the t -> 0 limit of concrete_keep_mask;
    kept units are `scale` (in one pass over u, which is as large as the layer)."""
    return torch.where(u <= 1.0 - p, scale, torch.zeros((), dtype=u.dtype, device=u.device))


def bernoulli_entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) in nats."""
    eps = 1e-7
    return -(p * torch.log(p + eps) + (1.0 - p) * torch.log1p(-p + eps))


def concrete_regulariser(weight: torch.Tensor, p: torch.Tensor, in_features: int, length_scale: float,
                         n_data: float, tau: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight term, dropout term) of the paper's KL / (tau N) for one layer, W in rescaled form."""
    scale = 1.0 / (tau * max(float(n_data), 1.0))
    weight_term = length_scale ** 2 * weight.pow(2).sum() / (2.0 * (1.0 - p)) * scale
    dropout_term = -in_features * bernoulli_entropy(p) * scale
    return weight_term, dropout_term


class ConcreteDropout(nn.Module):
    """Dropout on a (B, K) input with rate p = sigmoid(p_logit); learned when `learn` is True.

    forward(x, u, relaxed): u is the uniform noise (B, K); relaxed=True uses the concrete
    relaxation (gradients reach p), False a hard Bernoulli mask. u=None means dropout off.
    """

    def __init__(self, in_features: int, p_init: float, learn: bool, temperature: float = 0.1):
        super().__init__()
        if not 0.0 < p_init < 1.0:
            from howsure.errors import UserError

            raise UserError(f"dropout rate {p_init} must lie strictly between 0 and 1 (0 means: no layer)")
        self.in_features, self.temperature, self.learn = in_features, temperature, learn
        logit = torch.tensor(math.log(p_init) - math.log1p(-p_init))
        # A parameter either way, so checkpoints have the same keys; frozen when not learned.
        self.p_logit = nn.Parameter(logit, requires_grad=learn)

    @property
    def p(self) -> torch.Tensor:
        return torch.sigmoid(self.p_logit)

    def mask(self, u: torch.Tensor, relaxed: bool) -> torch.Tensor:
        p = self.p
        if relaxed and self.learn:
            return concrete_keep_mask(u, p, self.temperature, logit_p=self.p_logit) / (1.0 - p)
        return hard_keep_mask(u, p, scale=1.0 / (1.0 - p))

    def forward(self, x: torch.Tensor, u: torch.Tensor | None, relaxed: bool = False) -> torch.Tensor:
        if u is None:
            return x
        return x * self.mask(u, relaxed)
