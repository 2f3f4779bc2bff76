"""A stand-in for a user's own gymnasium package: one env registered on import, one registered
by a function (the two conventions third-party packages use)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Corridor(gym.Env):
    """Walk right along a corridor of `length` cells: reward 1 at the end, -0.01 per step."""

    def __init__(self, length: int = 4, render_mode: str | None = None):
        self.length, self.render_mode = length, render_mode
        self.observation_space = spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.pos = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.pos] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = max(0, min(self.length - 1, self.pos + (1 if action == 1 else -1)))
        done = self.pos == self.length - 1
        return self._obs(), 1.0 if done else -0.01, done, False, {}


gym.register("HowsureCorridor-v0", entry_point=Corridor, max_episode_steps=50)


def register_all() -> None:
    gym.register("HowsureCorridorLong-v0", entry_point=Corridor, kwargs={"length": 6}, max_episode_steps=60)


class GridCorridor(Corridor):
    """The corridor seen as a small channels-last image, (5, length, 1) uint8: the agent's cell is 1."""

    def __init__(self, length: int = 5, render_mode: str | None = None):
        super().__init__(length, render_mode)
        self.observation_space = spaces.Box(0, 1, (5, length, 1), np.uint8)

    def _obs(self) -> np.ndarray:
        grid = np.zeros((5, self.length, 1), np.uint8)
        grid[2, self.pos, 0] = 1
        return grid


gym.register("HowsureGridCorridor-v0", entry_point=GridCorridor, max_episode_steps=50)


class Signpost(gym.Env):
    """A Dict observation whose parts all matter: walk to the exit the sign names.

    {"view": (3, 5) uint8 grid with the agent's cell 1, "sign": Discrete(2, start=1) naming the
    rewarding exit (1: left, 2: right), "mission": Text (a constant string, as in MiniGrid)}.
    Actions 0 left, 1 right; the left exit is cell 0 and the right exit cell 4, start in cell 2.
    Reaching the named exit gives +1, the other -1; without reading the sign an agent averages 0."""

    def __init__(self, render_mode: str | None = None):
        self.render_mode = render_mode
        self.observation_space = spaces.Dict({
            "view": spaces.Box(0, 1, (3, 5), np.uint8),
            "sign": spaces.Discrete(2, start=1),
            "mission": spaces.Text(max_length=32),
        })
        self.action_space = spaces.Discrete(2)
        self.pos, self.sign = 2, 1

    def _obs(self) -> dict:
        view = np.zeros((3, 5), np.uint8)
        view[1, self.pos] = 1
        return {"view": view, "sign": self.sign, "mission": "take the exit the sign names"}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.sign = 2, int(self.np_random.integers(1, 3))
        return self._obs(), {}

    def step(self, action):
        self.pos += 1 if action == 1 else -1
        if self.pos in (0, 4):
            won = (self.pos == 0) == (self.sign == 1)
            return self._obs(), 1.0 if won else -1.0, True, False, {}
        return self._obs(), 0.0, False, False, {}


gym.register("HowsureSignpost-v0", entry_point=Signpost, max_episode_steps=20)


class BoolCorridor(Corridor):
    """The corridor as a 10x10 channels-last bool image, (10, 10, 1): the agent's cell is True."""

    def __init__(self, render_mode: str | None = None):
        super().__init__(10, render_mode)
        self.observation_space = spaces.Box(0, 1, (10, 10, 1), np.bool_)

    def _obs(self) -> np.ndarray:
        grid = np.zeros((10, 10, 1), np.bool_)
        grid[5, self.pos, 0] = True
        return grid


gym.register("HowsureBoolCorridor-v0", entry_point=BoolCorridor, max_episode_steps=40)
