"""One network per part of a Dict or Tuple observation (envs/parts.py packs them into one row).

Each part gets its own piece: an image part the grid CNN below 36x36 (MiniGrid's 7x7 view) or the
Nature CNN from there up, a Discrete part its one-hot code, a vector part its values. The pieces are
concatenated and an MLP mixes them into `features`. `encoder.name=auto` picks this encoder for
every packed observation, and the LSTM encoder uses it as its per-step embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from howsure.encoders.grid_cnn import NATURE_MIN_SIZE, GridCNNConfig, GridCNNEncoder
from howsure.encoders.image import image_layout
from howsure.encoders.nature_cnn import NatureCNNConfig, NatureCNNEncoder
from torch import nn


@dataclass(frozen=True)
class PartsConfig:
    hidden_sizes: tuple[int, ...] = (128,)  # units of the MLP over the concatenated parts
    image_features: int = 128  # units out of each image part's CNN
    grid_channels: int = 16  # filters of the grid CNN's 3x3 convolution (images below 36x36)


class _PartSpec:
    """What an image encoder reads of a spec, for one part."""

    def __init__(self, shape: tuple[int, ...], dtype: str):
        self.obs_shape = shape
        self.obs_dtype = np.dtype(dtype)


class PartsEncoder(nn.Module):
    def __init__(self, cfg: PartsConfig, spec):
        super().__init__()
        self.parts = spec.parts
        self.images = nn.ModuleDict()
        width = 0
        for i, part in enumerate(self.parts):
            if part.kind == "image":
                _, _, h, w = image_layout(part.shape)
                sub = _PartSpec(part.shape, part.dtype)
                if min(h, w) >= NATURE_MIN_SIZE:
                    net = NatureCNNEncoder(NatureCNNConfig(features=cfg.image_features), sub)
                else:
                    net = GridCNNEncoder(GridCNNConfig(channels=cfg.grid_channels, features=cfg.image_features), sub)
                self.images[str(i)] = net
                width += net.out_features
            else:
                width += part.n if part.kind == "discrete" else part.size
        layers: list[nn.Module] = []
        for units in cfg.hidden_sizes:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        self.mix = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        pieces = []
        for i, part in enumerate(self.parts):
            cells = obs[:, part.offset:part.offset + part.size]
            if part.kind == "image":
                pieces.append(self.images[str(i)](cells.reshape(obs.shape[0], *part.shape)))
            elif part.kind == "discrete":
                pieces.append(nn.functional.one_hot(cells[:, 0].long(), part.n).float())
            else:
                pieces.append(cells.float())
        return self.mix(torch.cat(pieces, dim=1))

