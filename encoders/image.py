"""Image observations for the convolutional encoders: their layout, and a scaled float batch."""

from __future__ import annotations

import torch


def image_layout(shape: tuple[int, ...]) -> tuple[bool, int, int, int]:
    """(hwc, C, H, W) of an image observation: (C, H, W), (H, W, C) (hwc true) or (H, W)."""
    hwc = len(shape) == 3 and shape[-1] <= 4 < shape[0]
    if hwc:
        return True, shape[2], shape[0], shape[1]
    if len(shape) == 3:
        return False, shape[0], shape[1], shape[2]
    return False, 1, shape[0], shape[1]


def image_batch(obs: torch.Tensor, hwc: bool, scale: float, nhwc: bool = False) -> torch.Tensor:
    """A batch of observations as float (N, C, H, W) divided by `scale`. Integer pixels are converted
    and then divided in place: `uint8 / float` would cast into a temporary first, one more pass over
    the batch. nhwc: in channels-last memory, as convolutions with channels-last weights read it; a
    stack of C frames is interleaved while still uint8 (a quarter of the bytes), which costs less
    than torch's conversion of the float batch."""
    if obs.dim() == 3:  # (N, H, W): one channel
        obs = obs.unsqueeze(-1 if hwc else 1)
    if nhwc and not hwc:
        obs, hwc = torch.stack(obs.unbind(1), dim=-1), True
    if obs.dtype == torch.float32:  # the caller's tensor: never divided in place
        x = obs / scale if scale != 1.0 else obs
    else:
        x = obs.float()
        if scale != 1.0:
            x.div_(scale)
    return x.permute(0, 3, 1, 2) if hwc else x


def reads_nhwc(conv: torch.nn.Conv2d) -> bool:
    """Whether `conv`'s weights are channels-last (agent.channels_last), so its input should be."""
    return conv.weight.dim() == 4 and conv.weight.is_contiguous(memory_format=torch.channels_last) and \
        not conv.weight.is_contiguous()
