"""Labelled frames on disk: labels.npz written and read without pickle, and the ground truth of
chosen frames. The frames are collected by playing a game (howsure/detector.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save(data: dict[str, np.ndarray], directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "labels.npz"
    np.savez_compressed(path, **data)
    return path


def load(path: str | Path) -> dict[str, np.ndarray]:
    """A labels.npz (or the directory holding it), read without pickle."""
    from howsure.errors import UserError

    path = Path(path)
    if path.is_dir():
        path = path / "labels.npz"
    if not path.is_file():
        raise UserError(f"no labelled data at {str(path)!r}; make it with python -m howsure.detector label")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def per_frame(data: dict[str, np.ndarray], indices) -> list[dict[str, np.ndarray]]:
    """Ground truth of the chosen frames as [{'boxes', 'classes'}]."""
    out = []
    for i in indices:
        m = data["frame_index"] == i
        out.append({"boxes": data["boxes"][m], "classes": data["classes"][m]})
    return out
