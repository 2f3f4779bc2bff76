"""Boxes drawn on frames (numpy only), for the label previews and evaluate.py --video."""

from __future__ import annotations

import numpy as np

# one colour per class index, chosen to stand out on Atari backgrounds
PALETTE = np.array([[255, 0, 255], [0, 255, 255], [255, 255, 0], [255, 64, 64], [64, 255, 64],
                    [64, 128, 255], [255, 160, 0], [255, 255, 255]], dtype=np.uint8)


def draw_boxes(rgb: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
               scale_xy: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """A copy of rgb (H, W, 3) with 1-pixel box outlines; boxes (x1, y1, x2, y2) times scale_xy."""
    out = np.array(rgb, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    for (x1, y1, x2, y2), c in zip(np.asarray(boxes, dtype=float), np.asarray(classes)):
        x1, x2 = int(np.floor(x1 * scale_xy[0])), int(np.ceil(x2 * scale_xy[0])) - 1
        y1, y2 = int(np.floor(y1 * scale_xy[1])), int(np.ceil(y2 * scale_xy[1])) - 1
        x1, y1 = max(x1 - 1, 0), max(y1 - 1, 0)  # outline just outside the object
        x2, y2 = min(x2 + 1, w - 1), min(y2 + 1, h - 1)
        colour = PALETTE[int(c) % len(PALETTE)]
        out[y1, x1:x2 + 1] = colour
        out[y2, x1:x2 + 1] = colour
        out[y1:y2 + 1, x1] = colour
        out[y1:y2 + 1, x2] = colour
    return out


def grey_to_rgb(frame: np.ndarray, upscale: int = 1) -> np.ndarray:
    g = np.repeat(np.repeat(np.asarray(frame, dtype=np.uint8), upscale, 0), upscale, 1)
    return np.stack([g, g, g], axis=-1)
