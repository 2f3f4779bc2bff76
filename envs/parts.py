"""Dict and Tuple observations (MiniGrid's {"image", "direction", "mission"}) as one flat row.

`PackParts` wraps an env whose observation space is a Dict or Tuple (nested ones too) and returns
each observation as one flat row in which every part has its own slice: an image keeps its cells in
its own shape's order, a Discrete part is one cell holding its index, a vector its values. The row's
space is a `PackedBox`: a Box that also carries the layout (`parts`), which encoders/parts.py uses
to split a batch back into its parts and give each its own network (images to a CNN, discrete parts
one-hot, vectors as they are). Text parts (spaces.Text, and spaces of strings such as MiniGrid's
mission) are left out: the agents here take no language, and in MiniGrid's single-task envs the
mission is fixed by the env id.

Why a row and not a dict of arrays: every replay (uniform, prioritized, n-step, sequence), the
memory check, the checkpoint and the Ray actors then take Dict observations unchanged. The row is
uint8 whenever every part fits in a byte (pixels, grids, small Discrete parts), so a MiniGrid view
costs its 147 bytes plus one for the direction, and float32 otherwise. gymnasium's own
FlattenObservation is not used: it cannot flatten Text, turns Discrete parts into one-hot int64
columns, and keeps no record of where each part went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from howsure.errors import UserError


@dataclass(frozen=True)
class Part:
    name: str  # "image", "direction", "0", "agent/pos" for nested spaces
    kind: str  # image | vector | discrete
    shape: tuple[int, ...]  # the part's own shape (a discrete part: ())
    dtype: str  # the part's own dtype
    offset: int  # first cell of the part in the row
    size: int  # cells of the part in the row
    n: int = 0  # discrete: how many values
    start: int = 0  # discrete: the space's smallest value (stored as value - start)


def _leaves(space: spaces.Space, name: str = "") -> Iterator[tuple[str, spaces.Space]]:
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            yield from _leaves(sub, f"{name}/{key}" if name else str(key))
    elif isinstance(space, spaces.Tuple):
        for i, sub in enumerate(space.spaces):
            yield from _leaves(sub, f"{name}/{i}" if name else str(i))
    else:
        yield name, space


def _leaf_values(obs: Any, space: spaces.Space, name: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            yield from _leaf_values(obs[key], sub, f"{name}/{key}" if name else str(key))
    elif isinstance(space, spaces.Tuple):
        for i, sub in enumerate(space.spaces):
            yield from _leaf_values(obs[i], sub, f"{name}/{i}" if name else str(i))
    else:
        yield name, obs


def _is_text(space: spaces.Space) -> bool:
    """gymnasium's Text, or a space of strings of its own (MiniGrid's MissionSpace)."""
    if isinstance(space, spaces.Text):
        return True
    if isinstance(space, (spaces.Box, spaces.Discrete, spaces.MultiBinary, spaces.MultiDiscrete)):
        return False
    try:
        return isinstance(space.sample(), str)
    except Exception:  # noqa: BLE001 - a space that cannot sample is not text
        return False


def is_image(shape: tuple[int, ...], dtype: np.dtype) -> bool:
    """(C, H, W) or (H, W, C) of any dtype, or a 2-D grid of uint8 or bool cells (as EnvSpec.image_obs)."""
    return len(shape) == 3 or (np.dtype(dtype) in (np.uint8, np.bool_) and len(shape) == 2)


def layout_of(space: spaces.Space, env_id: str) -> list[Part]:
    """Where each part of a Dict or Tuple observation goes in the row."""
    parts: list[Part] = []
    offset = 0
    for name, sub in _leaves(space):
        if _is_text(sub):
            continue
        if isinstance(sub, spaces.Discrete):
            part = Part(name, "discrete", (), "int64", offset, 1, int(sub.n), int(sub.start))
        elif isinstance(sub, (spaces.Box, spaces.MultiBinary, spaces.MultiDiscrete)):
            shape = tuple(int(d) for d in sub.shape)
            kind = "image" if isinstance(sub, spaces.Box) and is_image(shape, sub.dtype) else "vector"
            part = Part(name, kind, shape, str(np.dtype(sub.dtype)), offset, int(np.prod(shape, dtype=np.int64)))
        else:
            raise UserError(
                f"env {env_id!r}: observation part {name!r} is a {type(sub).__name__} space, which no encoder "
                "takes; Dict and Tuple parts may be Box, Discrete, MultiBinary, MultiDiscrete or Text (left out)")
        parts.append(part)
        offset += part.size
    if not parts:
        raise UserError(f"env {env_id!r}: its {type(space).__name__} observation has no part an encoder takes "
                        "(only Text parts, which are left out)")
    return parts


def row_dtype(parts: list[Part]) -> np.dtype:
    """uint8 when every part fits in a byte, else float32 (exact for integers below 2**24)."""
    small = all((p.kind == "discrete" and p.n <= 256) or p.dtype in ("uint8", "bool") for p in parts)
    return np.dtype(np.uint8) if small else np.dtype(np.float32)


class PackedBox(spaces.Box):
    """A flat Box row that remembers its parts (envs/parts.py); gymnasium treats it as any Box."""

    def __init__(self, low, high, shape, dtype, parts=(), seed=None):
        super().__init__(low, high, shape, dtype, seed)
        self.parts: tuple[Part, ...] = tuple(parts)

    def __eq__(self, other) -> bool:
        return super().__eq__(other) and getattr(other, "parts", None) == self.parts

    __hash__ = None  # Box is unhashable too


class PackParts(gym.ObservationWrapper):
    """A Dict or Tuple observation as one flat row (see the module docstring)."""

    def __init__(self, env: gym.Env, env_id: str):
        super().__init__(env)
        self.source = env.observation_space
        self.parts = layout_of(self.source, env_id)
        self.dtype = row_dtype(self.parts)
        total = sum(p.size for p in self.parts)
        low, high = (0, 255) if self.dtype == np.uint8 else (-np.inf, np.inf)
        self.observation_space = PackedBox(low, high, (total,), self.dtype, parts=self.parts)

    def observation(self, obs: Any) -> np.ndarray:
        values = dict(_leaf_values(obs, self.source))
        row = np.empty(self.observation_space.shape, self.dtype)
        for p in self.parts:
            value = values[p.name]
            if p.kind == "discrete":
                row[p.offset] = int(value) - p.start
            else:
                row[p.offset:p.offset + p.size] = np.asarray(value).reshape(-1)
        return row


def unpack(row: np.ndarray, part: Part) -> np.ndarray:
    """One part of a row (or a batch of rows, the part's cells last), in the part's own shape."""
    cells = row[..., part.offset:part.offset + part.size]
    if part.kind == "discrete":
        return cells[..., 0].astype(np.int64) + part.start
    return cells.reshape(*row.shape[:-1], *part.shape).astype(part.dtype)
