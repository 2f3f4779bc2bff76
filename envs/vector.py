"""Vectorised environments, and the one place that handles autoreset.

Acting uses gymnasium's SAME_STEP autoreset: an env that finishes is reset inside step(), the
returned observation is the new episode's first one, and the true last observation comes back
in infos["final_obs"]. step() below hands the loop both: what to store and what to act on next.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from howsure.envs.ale_vector import final_obs_mask, make_ale_vector
from howsure.envs.atari import is_atari
from howsure.envs.make import make_env


def make_vector_env(cfg, num_envs: int, *, same_step: bool = True, render_mode: str | None = None,
                    workers: bool = False, threads: int | None = None) -> gym.vector.VectorEnv:
    """workers=True: each env in its own process (gymnasium's AsyncVectorEnv, shared memory), so
    envs step while the loop's process does something else (the update, see VectorStepper.send)."""
    make_env(cfg).close()  # fail here, with one clear line, rather than inside a worker
    if cfg.backend == "ale_vector" and render_mode is None:
        if not is_atari(cfg.id):
            from howsure.errors import UserError

            raise UserError(f"env.backend=ale_vector steps ALE/ games only, not {cfg.id!r}; use env.backend=gymnasium")
        return make_ale_vector(cfg, num_envs, same_step=same_step, threads=threads or cfg.env_threads)
    mode = gym.vector.AutoresetMode.SAME_STEP if same_step else gym.vector.AutoresetMode.NEXT_STEP
    thunks = [lambda: make_env(cfg, render_mode=render_mode) for _ in range(num_envs)]
    if workers:
        # spawn, not fork: the parent already runs torch's thread pools
        return gym.vector.AsyncVectorEnv(thunks, autoreset_mode=mode, context="spawn")
    return gym.vector.SyncVectorEnv(thunks, autoreset_mode=mode)


@dataclass(frozen=True)
class Step:
    obs: np.ndarray  # what to act on next (first obs of a new episode where one ended)
    next_obs: np.ndarray  # the true successor of the previous obs (final obs where one ended)
    rewards: np.ndarray  # raw rewards
    terminated: np.ndarray
    truncated: np.ndarray
    lives_lost: np.ndarray  # Atari: a life was lost on this step (learner-side signal)

    @property
    def dones(self) -> np.ndarray:
        return self.terminated | self.truncated


class VectorStepper:
    """Wraps a SAME_STEP vector env; remembers lives so life loss is visible to the learner."""

    def __init__(self, envs: gym.vector.VectorEnv):
        self.envs = envs
        self.lives: np.ndarray | None = None
        # steps run while the caller works: worker processes, or ale-py's C++ threads
        self._workers = isinstance(envs, gym.vector.AsyncVectorEnv)
        self._native = hasattr(envs, "send") and hasattr(envs, "recv")

    @property
    def steps_in_background(self) -> bool:
        """True when a step runs between send() and recv() while the caller works."""
        return self._workers or self._native

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, infos = self.envs.reset(seed=seed)
        self.lives = np.asarray(infos["lives"]).copy() if "lives" in infos else None
        return obs

    def send(self, actions: np.ndarray) -> None:
        """Start a step; worker-process envs run it while the caller goes on until recv()."""
        if self._workers:
            self.envs.step_async(actions)
        elif self._native:
            self.envs.send(np.asarray(actions))
        else:
            self._actions = actions

    def recv(self) -> Step:
        if self._workers:
            return self._step_result(*self.envs.step_wait())
        if self._native:
            return self._step_result(*self.envs.recv())
        return self._step_result(*self.envs.step(self._actions))

    def step(self, actions: np.ndarray) -> Step:
        self.send(actions)
        return self.recv()

    def _step_result(self, obs, rewards, terminated, truncated, infos) -> Step:
        dones = terminated | truncated
        next_obs = obs
        if dones.any() and "final_obs" in infos:
            next_obs = obs.copy()
            for i in np.flatnonzero(final_obs_mask(infos, dones)):
                next_obs[i] = infos["final_obs"][i]
        lives_lost = np.zeros_like(dones)
        if self.lives is not None and "lives" in infos:
            lives = np.asarray(infos["lives"])
            final_lives = lives.copy()
            if dones.any() and "final_info" in infos and "lives" in infos["final_info"]:
                done_idx = np.flatnonzero(dones)
                final_lives[done_idx] = np.asarray(infos["final_info"]["lives"])[done_idx]
            lives_lost = final_lives < self.lives
            self.lives = lives.copy()
        return Step(obs, next_obs, np.asarray(rewards, dtype=np.float32), terminated, truncated, lives_lost)

    def close(self) -> None:
        self.envs.close()
