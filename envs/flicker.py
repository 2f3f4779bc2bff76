"""Flickering screens (DRQN's Flickering Pong, Hausknecht & Stone 2015, arXiv:1507.06527): each
observation is fully blanked with probability p, so a single frame may hold nothing and the agent
must integrate over time. Applied per agent step, before frame stacking (envs/atari.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Flicker(gym.ObservationWrapper):
    def __init__(self, env: gym.Env, prob: float):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"flicker probability must lie in [0, 1], got {prob}")
        super().__init__(env)
        self.prob = prob
        self._rng = np.random.default_rng()  # own stream: the game's randomness stays as without flicker

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([seed, 0xF11C])
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        if self._rng.random() < self.prob:
            return np.zeros_like(observation)
        return observation
