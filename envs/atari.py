"""Atari games with the DQN preprocessing of arXiv:1312.5602 / Nature 2015, from gymnasium's wrappers.

The order is fixed (innermost first):
  1. ALE/<Game>-v5 with frameskip=1 and explicit sticky actions (repeat_action_probability) and
     action set, so AtariPreprocessing owns the frame skip; episodes are full games capped at
     max_episode_frames.
  2. AtariPreprocessing: up to noop_max no-ops at reset, frame skip with max-pooling of the last
     two frames, 84x84 grayscale, uint8. terminal_on_life_loss stays False: a lost life ending
     the bootstrapping is a learner-side switch, so returns stay full-game scores.
  3. FireOnReset for games whose minimal action set has FIRE (Breakout would otherwise wait).
  3b. Flicker when flicker_prob > 0: each preprocessed screen blanked with that probability
     (DRQN's Flickering Pong, arXiv:1507.06527), before stacking as in the paper.
  3c. DetectObjects when detector is set: each screen -> its top-K objects (envs/objects.py).
  4. FrameStackObservation: the last frame_stack frames; an episode's first stack repeats its
     first frame.
Rewards are never clipped here: clipping is a learner-side switch (agent.clip_rewards).
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation
from howsure.envs.flicker import Flicker


class FireOnReset(gym.Wrapper):
    """Press FIRE after reset (and RIGHT/UP, as the DQN reference code does) to start the game."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        self._fire = meanings.index("FIRE")
        self._second = 2 if len(meanings) >= 3 else None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        for action in (self._fire, self._second):
            if action is None:
                continue
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def make_atari(cfg, render_mode: str | None = None) -> gym.Env:
    env = gym.make(
        cfg.id,
        frameskip=1,
        repeat_action_probability=cfg.sticky_action_prob,
        full_action_space=cfg.full_action_space,
        max_num_frames_per_episode=cfg.max_episode_frames,
        render_mode=render_mode,
        **cfg.kwargs,
    )
    env = AtariPreprocessing(
        env,
        noop_max=cfg.noop_max,
        frame_skip=cfg.frame_skip,
        screen_size=cfg.screen_size,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireOnReset(env)
    if cfg.flicker_prob > 0:
        env = Flicker(env, cfg.flicker_prob)
    if cfg.detector:
        from howsure.envs.objects import DetectObjects  # torch and the detector only for envs that use them

        env = DetectObjects(env, cfg.detector, cfg.detector_top_k, cfg.detector_min_score)
    return FrameStackObservation(env, stack_size=cfg.frame_stack, padding_type="reset")


def protocol(cfg) -> str:
    """The evaluation protocol in words, printed by evaluate.py and stored in its JSON."""
    return (
        f"sticky_action_prob={cfg.sticky_action_prob} noop_max={cfg.noop_max} "
        f"frame_skip={cfg.frame_skip} full_action_space={cfg.full_action_space} "
        f"max_episode_frames={cfg.max_episode_frames} score=full game (all lives), raw"
        + (f" flicker_prob={cfg.flicker_prob}" if cfg.flicker_prob > 0 else "")
        + (f" detector={cfg.detector}" if cfg.detector else "")
    )
