"""Per-env episode bookkeeping on raw rewards: game score, discounted return, length."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Episode:
    env_index: int
    episodic_return: float  # raw game score, sum_t r_t
    discounted_return: float  # sum_t gamma^t r_t from the episode's first step
    length: int  # agent steps


class EpisodeTracker:
    def __init__(self, num_envs: int, gamma: float):
        self.gamma = gamma
        self.returns = np.zeros(num_envs)
        self.discounted = np.zeros(num_envs)
        self.discount = np.ones(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def step(self, rewards: np.ndarray, dones: np.ndarray) -> list[Episode]:
        rewards = np.asarray(rewards, dtype=np.float64)
        self.returns += rewards
        self.discounted += self.discount * rewards
        self.discount *= self.gamma
        self.lengths += 1
        finished = [
            Episode(int(i), float(self.returns[i]), float(self.discounted[i]), int(self.lengths[i]))
            for i in np.flatnonzero(dones)
        ]
        for ep in finished:
            self.reset(ep.env_index)
        return finished

    def reset(self, i: int) -> None:
        self.returns[i] = 0.0
        self.discounted[i] = 0.0
        self.discount[i] = 1.0
        self.lengths[i] = 0
