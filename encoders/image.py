"""Image observations for the convolutional encoders: their layout, and a float NCHW batch."""

from __future__ import annotations

import torch


def image_layout(shape: tuple[int, ...]) -> tuple[bool, int, int, int]:
    """(channels_last, C, H, W) of an image observation: (C, H, W), (H, W, C) or (H, W)."""
    channels_last = len(shape) == 3 and shape[-1] <= 4 < shape[0]
    if channels_last:
        return True, shape[2], shape[0], shape[1]
    if len(shape) == 3:
        return False, shape[0], shape[1], shape[2]
    return False, 1, shape[0], shape[1]


def image_batch(obs: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch of observations as float (N, C, H, W), unscaled."""
    x = obs.float()
    if channels_last:
        return x.permute(0, 3, 1, 2)
    return x.unsqueeze(1) if x.dim() == 3 else x
