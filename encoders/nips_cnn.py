"""The convolutional network of the first DQN paper (Mnih et al. 2013, arXiv:1312.5602).

16 8x8 filters with stride 4, 32 4x4 filters with stride 2, then a dense layer of 256 units:
about a third of the Nature network's multiply-adds at 84x84, and a twentieth at 42x42, where
its convolutions leave 3x3 maps. `layer_norm` puts a LayerNorm after each layer (before the
ReLU), as PQN (Gallici et al. 2024) does to learn stably without a target network.
uint8 frames in, scaled inside forward; channels first (C, H, W) as the frame stack gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from howsure.encoders.image import image_batch, image_layout, reads_nhwc, require_image
from torch import nn

from howsure.errors import UserError


@dataclass(frozen=True)
class NipsCNNConfig:
    features: int = 256  # units of the dense layer after the convolutions
    layer_norm: bool = False  # LayerNorm after every layer (PQN)


class NipsCNNEncoder(nn.Module):
    def __init__(self, cfg: NipsCNNConfig, spec):
        super().__init__()
        require_image(spec, "encoder.name=nips_cnn")
        self.hwc, c, h, w = image_layout(spec.obs_shape)
        self.scale = 255.0 if np.dtype(spec.obs_dtype) == np.uint8 else 1.0
        layers: list[nn.Module] = []
        shape = (c, h, w)
        for out, kernel, stride in ((16, 8, 4), (32, 4, 2)):
            if min(shape[1:]) < kernel:
                raise UserError(f"encoder nips_cnn needs images of at least 22x22 pixels, got {h}x{w}; "
                                "use encoder.name=mlp")
            conv = nn.Conv2d(shape[0], out, kernel, stride=stride)
            shape = (out, (shape[1] - kernel) // stride + 1, (shape[2] - kernel) // stride + 1)
            layers += [conv] + ([nn.LayerNorm(list(shape))] if cfg.layer_norm else []) + [nn.ReLU()]
        layers.append(nn.Flatten())
        n_flat = shape[0] * shape[1] * shape[2]
        layers += [nn.Linear(n_flat, cfg.features)]
        layers += ([nn.LayerNorm(cfg.features)] if cfg.layer_norm else []) + [nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.out_features = cfg.features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(image_batch(obs, self.hwc, self.scale, reads_nhwc(self.net[0])))
