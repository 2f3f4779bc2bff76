"""Heads map encoder features to one value per action."""

from __future__ import annotations

import torch
from torch import nn


class QHead(nn.Module):
    """Linear Q head, or the dueling head of Wang et al. 2016 (arXiv:1511.06581)."""

    def __init__(self, in_features: int, n_actions: int, dueling: bool = False, hidden: int = 0):
        super().__init__()
        self.dueling = dueling

        def stream(out: int) -> nn.Module:
            if hidden:
                return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out))
            return nn.Linear(in_features, out)

        self.advantage = stream(n_actions)
        self.value = stream(1) if dueling else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        adv = self.advantage(features)
        if self.value is None:
            return adv
        return self.value(features) + adv - adv.mean(dim=1, keepdim=True)


class QNetwork(nn.Module):
    """encoder + head: observations -> Q-values (B, n_actions)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(obs))
