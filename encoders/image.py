"""Image observations for the convolutional encoders: their layout, and a scaled float batch."""

from __future__ import annotations

import numpy as np
import torch

from howsure.errors import UserError


def describe(spec) -> str:
    """What an env's observations are, for an error message: "'CartPole-v1' gives (4,) float32"."""
    env = getattr(spec, "env_id", None)
    who = f"{env!r}" if env else "this env"
    space = getattr(spec, "obs_space", None)
    if getattr(spec, "discrete_obs", False) and space is not None:
        return f"{who} gives one of {int(space.n)} discrete states"
    return f"{who} gives {tuple(spec.obs_shape)} {np.dtype(spec.obs_dtype)}"


def require_image(spec, what: str, min_size: int = 1, fix: str = "use encoder.name=mlp or auto") -> None:
    """UserError unless `spec` holds images image_layout reads ((C, H, W), (H, W, C) or (H, W)) of at
    least min_size x min_size; `what` names the setting that asked for the CNN (encoder.name=nature_cnn)."""
    shape = tuple(spec.obs_shape)
    if getattr(spec, "discrete_obs", False) or len(shape) not in (2, 3):
        raise UserError(f"{what} needs image observations ((C, H, W), (H, W, C) or (H, W)); "
                        f"{describe(spec)}; {fix}")
    _, _, h, w = image_layout(shape)
    if min(h, w) < min_size:
        raise UserError(f"{what} needs images of at least {min_size}x{min_size} pixels; {describe(spec)} "
                        f"({h}x{w}); use encoder.name=auto (grid_cnn below {min_size}x{min_size})")


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
