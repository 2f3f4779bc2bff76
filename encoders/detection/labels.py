"""Boxes without hand work: Atari screens are drawn in flat colours, so each object class is a set
of grey levels inside a band of screen rows, and each object is a connected component of those
pixels (scipy.ndimage.label), kept if its size fits the class.

Labels are read from the raw 210x160 frame that the agent's 84x84 input is resized from (the max
of the last two emulator frames, inside gymnasium's AtariPreprocessing), then scaled to the 84x84
input and widened to whole input pixels: a box is the set of input pixels the object touches
(area resizing smears a 2-pixel ball over 1-2 input pixels; a half-pixel box would ask the
detector for a precision its input does not carry). A moving ball is both of its positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RAW_HW = (210, 160)  # ALE screen, rows x columns


@dataclass(frozen=True)
class ClassRule:
    name: str
    grey: tuple[int, ...]  # ALE grey levels (the value AtariPreprocessing's grayscale gives)
    rows: tuple[int, int]  # raw screen rows [first, last] where this class lives
    cols: tuple[int, int] = (0, 159)  # raw screen columns [first, last]
    max_wh: tuple[int, int] = (160, 210)  # raw pixels; larger components are not this class
    min_pixels: int = 1
    cell_wh: tuple[int, int] = (0, 0)  # >0: a fixed grid (bricks) from (cell_x0, rows[0]) instead of components
    cell_x0: int = 0  # first grid column; the grid is symmetric, ending cell_x0 before the right edge


@dataclass(frozen=True)
class GameLabels:
    classes: tuple[ClassRule, ...] = field(default_factory=tuple)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.classes))


# Grey levels and rows measured on ale-py 0.12 screens (print np.unique of a frame to extend this).
GAMES: dict[str, GameLabels] = {
    # Pong: background 87, walls/score outside rows 34-193; right paddle (agent) green 147,
    # left paddle (computer) orange 148, ball white 236.
    "Pong": GameLabels((
        ClassRule("player", (147,), (34, 193), max_wh=(6, 40), min_pixels=4),
        ClassRule("enemy", (148,), (34, 193), max_wh=(6, 40), min_pixels=4),
        ClassRule("ball", (236,), (34, 193), max_wh=(6, 10)),
    )),
    # Breakout: black background, grey walls 142; six brick rows (rows 57-92, grey 110/148/131/
    # 129/124/85) split on the 8-pixel brick grid from column 8; the paddle (rows 189-193) and the
    # ball share the red brick colour 110 and are told apart by rows and size (the ball rule goes
    # first: it claims small blobs in the paddle rows); the walls' bottom
    # ends (columns 0-7 and 152-159) are red too and are left out.
    "Breakout": GameLabels((
        ClassRule("ball", (110,), (32, 193), (8, 151), max_wh=(5, 9)),
        ClassRule("paddle", (110,), (189, 193), (8, 151), max_wh=(40, 8), min_pixels=4),
        ClassRule("brick", (110, 148, 131, 129, 124, 85), (57, 92), cell_wh=(8, 6), cell_x0=8),
    )),
}


def game_name(env_id: str) -> str:
    """'ALE/Pong-v5' -> 'Pong'."""
    return env_id.split("/")[-1].split("-")[0]


def game_labels(env_id: str) -> GameLabels:
    from howsure.errors import UserError
    from howsure.registry import suggest

    name = game_name(env_id)
    if name not in GAMES:
        raise UserError(f"no automatic labels for {env_id!r}{suggest(name, list(GAMES))}; "
                        "add a GameLabels entry in encoders/detection/labels.py")
    return GAMES[name]


def label_raw(raw: np.ndarray, game: GameLabels, out_hw: tuple[int, int] = (84, 84)) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) as (x1, y1, x2, y2) in whole out_hw pixels, end-exclusive, and class indices (N,)."""
    sy, sx = out_hw[0] / raw.shape[0], out_hw[1] / raw.shape[1]
    names = game.names
    boxes, classes = [], []
    taken = np.zeros(raw.shape, dtype=bool)  # a pixel belongs to the first rule that claims it
    for rule in game.classes:
        mask = np.isin(raw, rule.grey) & ~taken
        mask[: rule.rows[0]] = False
        mask[rule.rows[1] + 1:] = False
        mask[:, : rule.cols[0]] = False
        mask[:, rule.cols[1] + 1:] = False
        if rule.cell_wh[0]:
            parts = _cells(mask, rule)
        else:
            parts = _components(mask, rule)
        for x1, y1, x2, y2 in parts:
            boxes.append([np.floor(x1 * sx), np.floor(y1 * sy), np.ceil(x2 * sx), np.ceil(y2 * sy)])
            classes.append(names.index(rule.name))
            taken[y1:y2, x1:x2] |= mask[y1:y2, x1:x2]
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(classes, dtype=np.int64))


def _components(mask: np.ndarray, rule: ClassRule) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x1, y1, x2, y2), end-exclusive, of the components that fit the rule's size."""
    from scipy import ndimage

    comps, _ = ndimage.label(mask)
    out = []
    for k, sl in enumerate(ndimage.find_objects(comps), start=1):
        ys, xs = sl
        if (xs.stop - xs.start <= rule.max_wh[0] and ys.stop - ys.start <= rule.max_wh[1]
                and (comps[sl] == k).sum() >= rule.min_pixels):
            out.append((xs.start, ys.start, xs.stop, ys.stop))
    return out


def _cells(mask: np.ndarray, rule: ClassRule) -> list[tuple[int, int, int, int]]:
    """Grid cells at least half covered by the rule's pixels (bricks touch, so components merge)."""
    cw, ch = rule.cell_wh
    out = []
    for y1 in range(rule.rows[0], rule.rows[1] + 1 - ch + 1, ch):
        for x1 in range(rule.cell_x0, mask.shape[1] - rule.cell_x0 - cw + 1, cw):
            if mask[y1:y1 + ch, x1:x1 + cw].sum() * 2 >= cw * ch:
                out.append((x1, y1, x1 + cw, y1 + ch))
    return out
