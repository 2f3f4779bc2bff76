"""Animated GIFs of game screens: small enough for an event file or a web page, at the game's speed.

The dashboards' evaluation videos (howsure/dashboards.py via howsure/logger.py) and
`evaluate.py --gif` (howsure/evaluation.py) both make them here.
"""

from __future__ import annotations

import numpy as np

MAX_WIDTH = 160  # pixels: screens wider than this are subsampled by a whole stride
MAX_FRAMES = 450  # frames kept of an episode (30 s of Atari at 15 fps)


def shrink(frame: np.ndarray, max_width: int = MAX_WIDTH) -> np.ndarray:
    """Every k-th pixel in both directions, with the smallest k that makes it at most max_width
    wide (a whole stride keeps pixel art sharp, where resampling would blur it)."""
    stride = -(-frame.shape[1] // max_width)  # ceiling division
    return np.ascontiguousarray(frame[::stride, ::stride])


def delay_ms(fps: float) -> int:
    """GIF delays are whole hundredths of a second: the one nearest to 1/fps, at least 10 ms."""
    return 10 * max(1, round(100.0 / fps))


def encode(frames: np.ndarray, fps: float) -> bytes:
    """(T, H, W, 3) uint8 frames as a looping GIF file's bytes (imageio with Pillow)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", frames, extension=".gif", duration=delay_ms(fps), loop=0)
