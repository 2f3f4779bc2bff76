"""MLP encoder for vector observations; Discrete observations are one-hot encoded first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class MLPConfig:
    hidden_sizes: tuple[int, ...] = (256, 256)  # units per hidden layer
    activation: Literal["relu", "tanh", "elu"] = "relu"  # checked when the config loads
    layer_norm: bool = False  # LayerNorm before each activation (PQN learns without a target network)


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}


class MLPEncoder(nn.Module):
    def __init__(self, cfg: MLPConfig, spec):
        super().__init__()
        self.one_hot = spec.n_obs if spec.discrete_obs else 0
        in_features = self.one_hot or int(np.prod(spec.obs_shape))
        layers: list[nn.Module] = []
        for width in cfg.hidden_sizes:
            norm = [nn.LayerNorm(width)] if cfg.layer_norm else []
            layers += [nn.Linear(in_features, width), *norm, _ACTIVATIONS[cfg.activation]()]
            in_features = width
        self.net = nn.Sequential(*layers)
        self.out_features = in_features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot:
            x = nn.functional.one_hot(obs.long().reshape(-1), self.one_hot).float()
        else:
            x = obs.reshape(obs.shape[0], -1).float()
        return self.net(x)
