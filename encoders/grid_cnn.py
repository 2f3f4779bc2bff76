"""A CNN for small image-like grids (MiniGrid's 7x7 views, 10x10 boards): one 3x3 convolution
that keeps the grid's size, then a dense layer. `encoder.name=auto` picks it for images smaller
than the Nature CNN's smallest input (36x36); the Nature CNN's 8x8 stride-4 first layer would
see a 7x7 grid as one pixel.

Channels-first (C, H, W), channels-last (H, W, C) and single-channel (H, W) grids are taken as
they come; bool, uint8 and float cells are used as numbers (a uint8 grid of object indices is not
a picture, so it is not divided by 255).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from howsure.encoders.image import image_batch, image_layout, reads_nhwc, require_image
from torch import nn

NATURE_MIN_SIZE = 36  # the smallest side the Nature CNN's three convolutions accept


@dataclass(frozen=True)
class GridCNNConfig:
    channels: int = 16  # filters of the 3x3 convolution
    features: int = 128  # units of the dense layer
    scale: float = 1.0  # cells are divided by this (255 for pixel grids in uint8)


class GridCNNEncoder(nn.Module):
    def __init__(self, cfg: GridCNNConfig, spec):
        super().__init__()
        require_image(spec, "encoder.name=grid_cnn")
        self.hwc, c, h, w = image_layout(spec.obs_shape)
        self.scale = float(cfg.scale)
        self.net = nn.Sequential(
            nn.Conv2d(c, cfg.channels, 3, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(cfg.channels * h * w, cfg.features), nn.ReLU(),
        )
        self.out_features = cfg.features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(image_batch(obs, self.hwc, self.scale, reads_nhwc(self.net[0])))
