"""NChain: the 5-state chain of the lecture (Strens 2000), which gymnasium no longer ships.

Action 0 moves forward (reward 0, or `large` when already at the last state), action 1 goes
back to the start with reward `small`. With probability `slip` the chosen action is flipped.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class NChainEnv(gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, length: int = 5, slip: float = 0.2, small: float = 2.0, large: float = 10.0,
                 render_mode: str | None = None):
        if length < 2:
            raise ValueError("NChain length must be at least 2")
        self.length, self.slip, self.small, self.large = length, slip, small, large
        self.observation_space = spaces.Discrete(length)
        self.action_space = spaces.Discrete(2)
        self.render_mode = render_mode
        self.state = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = 0
        return self.state, {}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"NChain action must be 0 or 1, got {action!r}")
        if self.np_random.random() < self.slip:
            action = 1 - action
        if action == 1:
            reward, self.state = self.small, 0
        elif self.state < self.length - 1:
            reward, self.state = 0.0, self.state + 1
        else:
            reward = self.large
        return self.state, float(reward), False, False, {}

    def render(self):
        return "".join("x" if i == self.state else "." for i in range(self.length))


def register() -> None:
    if "NChain-v0" not in gym.registry:
        gym.register("NChain-v0", entry_point=NChainEnv, max_episode_steps=1000)


def chain_values(length: int = 5, slip: float = 0.2, small: float = 2.0, large: float = 10.0,
                 gamma: float = 0.95, iters: int = 2000) -> np.ndarray:
    """Optimal Q-values by value iteration (the reference the tabular tests compare against)."""
    q = np.zeros((length, 2))
    for _ in range(iters):
        v = q.max(axis=1)
        new = np.zeros_like(q)
        for s in range(length):
            fwd_s = min(s + 1, length - 1)
            fwd_r = large if s == length - 1 else 0.0
            back = small + gamma * v[0]
            fwd = fwd_r + gamma * v[fwd_s]
            new[s, 0] = (1 - slip) * fwd + slip * back
            new[s, 1] = (1 - slip) * back + slip * fwd
        q = new
    return q
