"""The Nature-DQN convolutional encoder (Mnih et al. 2015): uint8 frames in, scaled inside forward."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from howsure.encoders.grid_cnn import NATURE_MIN_SIZE
from howsure.encoders.image import image_batch, image_layout, reads_nhwc, require_image
from howsure.encoders.linear import Linear
from torch import nn


@dataclass(frozen=True)
class NatureCNNConfig:
    features: int = 512  # units of the fully connected layer after the convolutions


class NatureCNNEncoder(nn.Module):
    def __init__(self, cfg: NatureCNNConfig, spec):
        super().__init__()
        shape = spec.obs_shape
        require_image(spec, "encoder.name=nature_cnn", min_size=NATURE_MIN_SIZE)
        # Channels first (C, H, W) as the frame stack gives; (H, W, C) images are permuted.
        self.hwc, c, h, w = image_layout(shape)
        self.scale = 255.0 if np.dtype(spec.obs_dtype) == np.uint8 else 1.0
        self.convs = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, c, h, w)).shape[1]
        self.fc = nn.Sequential(Linear(n_flat, cfg.features), nn.ReLU())  # encoders/linear.py: faster on CPU
        self.out_features = cfg.features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(image_batch(obs, self.hwc, self.scale, reads_nhwc(self.convs[0]))))
