"""Atari games stepped by ale-py's C++ vector env (`env.backend: ale_vector`).

`ale_py.AtariVectorEnv` runs every game of the batch on its own C++ threads and does the same
preprocessing as envs/atari.py in C++ (no-op starts, frame skip with max-pooling of the last two
frames, grayscale, resize, FIRE on reset, frame stack), so one core steps several times more games
than gymnasium's Python wrappers do. Its `send`/`recv` let the games step while the caller's thread
trains (train.py calls `VectorStepper.send`, then the agent's between-steps work, then `recv`).

The screens are bit-identical to envs/atari.py's (same resize, same max-pooling). An episode's
first stacks repeat its first frame (`FirstFramePadding`), as gymnasium's
FrameStackObservation(padding_type="reset") and the frame-deduplicating replay do, where
AtariVectorEnv itself pads with blank frames. One difference remains: FIRE on reset is pressed
once instead of FIRE then RIGHT. An agent trained on one plays on the other;
`evaluate.py --video/--render` draws through envs/atari.py, which has the colour screens.
"""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np

from howsure.errors import UserError


def rom_name(env_id: str) -> str:
    """ALE/MontezumaRevenge-v5 -> montezuma_revenge (the ROM name AtariVectorEnv takes)."""
    game = env_id.split("/", 1)[1].rsplit("-v", 1)[0]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


def make_ale_vector(cfg, num_envs: int, *, same_step: bool = True, threads: int = 1) -> gym.vector.VectorWrapper:
    from ale_py import AtariVectorEnv

    if cfg.flicker_prob > 0 or cfg.detector:
        raise UserError("env.backend=ale_vector has no flicker or detector wrapper; "
                        "use env.backend=gymnasium for env.flicker_prob or env.detector")
    mode = gym.vector.AutoresetMode.SAME_STEP if same_step else gym.vector.AutoresetMode.NEXT_STEP
    try:
        env = AtariVectorEnv(
            rom_name(cfg.id), num_envs, num_threads=max(1, min(threads, num_envs)),
            max_num_frames_per_episode=cfg.max_episode_frames,
            repeat_action_probability=cfg.sticky_action_prob, full_action_space=cfg.full_action_space,
            autoreset_mode=mode, img_height=cfg.screen_size, img_width=cfg.screen_size, grayscale=True,
            stack_num=cfg.frame_stack, frameskip=cfg.frame_skip, maxpool=True, noop_max=cfg.noop_max,
            episodic_life=False, reward_clipping=False, use_fire_reset=True, **cfg.kwargs,
        )
    except (TypeError, ValueError, RuntimeError) as err:
        raise UserError(f"env {cfg.id!r} with env.backend=ale_vector: {str(err).splitlines()[0]}") from None
    return FirstFramePadding(env, same_step)


class FirstFramePadding(gym.vector.VectorWrapper):
    """Fill the blank frames AtariVectorEnv puts before an episode's first frame with copies of it."""

    def __init__(self, env: gym.vector.VectorEnv, same_step: bool):
        super().__init__(env)
        self.same_step = same_step
        self.stack = env.single_observation_space.shape[0]
        self.pos = np.zeros(env.num_envs, dtype=np.int64)  # agent steps since each episode's first frame
        self._reset_next = np.zeros(env.num_envs, dtype=bool)  # NEXT_STEP: the next step is a reset

    def reset(self, **kwargs):
        obs, infos = self.env.reset(**kwargs)
        self.pos[:] = 0
        self._reset_next[:] = False
        return self._pad(obs), infos

    def send(self, actions) -> None:
        self.env.send(actions)

    def recv(self):
        obs, rewards, terminated, truncated, infos = self.env.recv()
        dones = np.asarray(terminated) | np.asarray(truncated)
        self.pos += 1
        if self.same_step:
            self.pos[dones] = 0  # the returned observation is the new episode's first
        else:
            self.pos[self._reset_next] = 0
            self._reset_next = dones
        return self._pad(obs), rewards, terminated, truncated, infos

    def step(self, actions):
        self.send(actions)
        return self.recv()

    def _pad(self, obs: np.ndarray) -> np.ndarray:
        short = np.flatnonzero(self.pos < self.stack - 1)
        if len(short):
            obs = np.array(obs)
            for i in short:
                first = self.stack - 1 - int(self.pos[i])
                obs[i, :first] = obs[i, first]
        return obs


def final_obs_mask(infos: dict, dones: np.ndarray) -> np.ndarray:
    """Which envs' infos["final_obs"] hold a last observation (gymnasium sets `_final_obs`)."""
    return np.asarray(infos["_final_obs"]) if "_final_obs" in infos else dones
