"""CartPoleNoVel-v1: CartPole-v1 with both velocities hidden, as the RL Zoo defines it
(rl_zoo3's MaskVelocityWrapper: cart velocity and pole angular velocity are multiplied by 0,
the observation keeps its 4 entries). One observation no longer tells the state: a policy has to
infer the velocities from the history (DRQN's partially observed setting, arXiv:1507.06527).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

VELOCITY_INDICES = (1, 3)  # CartPole-v1: x, x_dot, theta, theta_dot


class MaskVelocity(gym.ObservationWrapper):
    def __init__(self, env: gym.Env, indices: tuple[int, ...] = VELOCITY_INDICES):
        super().__init__(env)
        self.mask = np.ones(env.observation_space.shape, dtype=env.observation_space.dtype)
        self.mask[list(indices)] = 0

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation * self.mask


def _make(render_mode: str | None = None, **kwargs) -> gym.Env:
    return MaskVelocity(gym.make("CartPole-v1", render_mode=render_mode, **kwargs).unwrapped)


def register() -> None:
    if "CartPoleNoVel-v1" not in gym.registry:
        # Same limits as CartPole-v1: 500 steps, solved at a mean return of 475.
        gym.register("CartPoleNoVel-v1", entry_point=_make, max_episode_steps=500, reward_threshold=475.0)
