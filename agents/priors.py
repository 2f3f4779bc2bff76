"""Randomized prior functions (Osband et al. 2018, arXiv:1806.03335): the initialisation shared
by boot_dqn's per-head priors and bayes_dqn's per-mask priors."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def init_prior(module: nn.Module) -> None:
    """Weights ~ truncated normal with std 1/sqrt(fan_in), biases 0: sonnet's default, as in bsuite's
    prior networks. Under torch's default init a prior's spread over deep_sea states is about 3x
    smaller and its random biases make it mostly a per-action constant: little state-dependent
    optimism (deep_sea results: docs/exploration.md)."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("bias"):
                param.zero_()
            elif param.dim() >= 2:
                std = 1.0 / np.sqrt(param[0].numel())
                nn.init.trunc_normal_(param, std=std, a=-2 * std, b=2 * std)
