"""A PNG of sample frames with their boxes, so a person can judge labels or detections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from howsure.encoders.detection.draw import PALETTE, draw_boxes, grey_to_rgb


def save_preview(path: str | Path, panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                 class_names: list[list[str]] | list[str], columns: int = 4, upscale: int = 4) -> Path:
    """panels: (title, 84x84 grey frame, boxes, classes); class_names: per panel or shared."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (title, frame, boxes, classes) in enumerate(panels):
        ax = axes.flat[k]
        ax.imshow(draw_boxes(grey_to_rgb(frame, upscale), boxes, classes, (upscale, upscale)))
        names = class_names[k] if isinstance(class_names[0], (list, tuple)) else class_names
        counts = np.bincount(np.asarray(classes, dtype=int), minlength=len(names))
        ax.set_title(title + "\n" + ", ".join(f"{n} {c}" for n, c in zip(names, counts)), fontsize=8)
        ax.legend(handles=[Patch(color=PALETTE[i % len(PALETTE)] / 255, label=n) for i, n in enumerate(names)],
                  fontsize=6, loc="lower left", framealpha=0.6)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
