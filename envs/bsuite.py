"""bsuite (Osband et al. 2019, arXiv:1908.03568) behind gymnasium: env ids `bsuite/<experiment>/<n>`.

`bsuite/deep_sea/5` is bsuite's `deep_sea/5` (the sweep's sixth setting, size 20), built from the
same settings `bsuite.load_from_id` uses; `env.kwargs` override single settings (for example
`mapping_seed`), and `flatten: false` keeps bsuite's observation shape instead of a flat vector.
bsuite speaks dm_env: an episode ends at a LAST time step, which is a termination when its
discount is 0 and a truncation (bootstrapping goes on) otherwise. bsuite's own gym wrapper targets
the old `gym` API, hence this adapter.
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from howsure.errors import UserError

PREFIX = "bsuite/"


def is_bsuite(env_id: str) -> bool:
    return env_id.startswith(PREFIX)


def settings_of(env_id: str) -> tuple[str, dict[str, Any]]:
    """(experiment name, constructor settings) of `bsuite/<experiment>/<n>`; UserError if unknown."""
    try:
        from bsuite import sweep
    except ImportError:
        raise UserError(f"env {env_id!r} needs bsuite: pip install 'bsuite>=0.3.5'") from None
    experiments = sorted({k.split("/")[0] for k in sweep.SETTINGS})
    parts = env_id[len(PREFIX):].split("/")
    if len(parts) != 2 or parts[0] not in experiments:
        from howsure.registry import suggest

        name = parts[0] if parts else ""
        raise UserError(f"unknown bsuite env id {env_id!r}: write bsuite/<experiment>/<n> with a known "
                        f"experiment{suggest(name, experiments)}")
    experiment, index = parts
    count = sum(1 for k in sweep.SETTINGS if k.split("/")[0] == experiment)
    if not index.isdigit() or int(index) >= count:
        raise UserError(f"bsuite env id {env_id!r}: {experiment} has settings 0..{count - 1}, got {index!r}")
    return experiment, dict(sweep.SETTINGS[f"{experiment}/{int(index)}"])


def check_id(env_id: str) -> None:
    """UserError naming the valid choices when `env_id` is not a bsuite experiment setting."""
    settings_of(env_id)


class BsuiteEnv(gym.Env):
    """One bsuite dm_env environment with the gymnasium API (float32 Box observations)."""

    metadata = {"render_modes": []}

    def __init__(self, env_id: str, flatten: bool = True, **overrides: Any):
        from bsuite import bsuite

        self.env_id = env_id
        self.experiment, settings = settings_of(env_id)
        self.settings = {**settings, **overrides}
        self._load = bsuite.EXPERIMENT_NAME_TO_ENVIRONMENT[self.experiment]
        self._takes_seed = "seed" in inspect.signature(self._load).parameters
        self.flatten = flatten
        self.dm_env = self._load(**self.settings)
        obs_spec, action_spec = self.dm_env.observation_spec(), self.dm_env.action_spec()
        shape = (int(np.prod(obs_spec.shape)),) if flatten else tuple(obs_spec.shape)
        low = np.broadcast_to(getattr(obs_spec, "minimum", -np.inf), obs_spec.shape).reshape(shape)
        high = np.broadcast_to(getattr(obs_spec, "maximum", np.inf), obs_spec.shape).reshape(shape)
        self.observation_space = spaces.Box(low.astype(np.float32), high.astype(np.float32), shape, np.float32)
        self.action_space = spaces.Discrete(int(action_spec.num_values))

    def _obs(self, observation: np.ndarray) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float32)
        return obs.reshape(self.observation_space.shape)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None and self._takes_seed:
            # bsuite seeds its environments at construction, so a new seed means a fresh env.
            self.dm_env = self._load(**{**self.settings, "seed": seed})
        return self._obs(self.dm_env.reset().observation), {}

    def step(self, action):
        ts = self.dm_env.step(int(action))
        last = ts.last()
        terminated = bool(last and ts.discount == 0.0)
        info = {"discount": float(ts.discount)}
        if last and hasattr(self.dm_env, "bsuite_info"):
            info["bsuite_info"] = self.dm_env.bsuite_info()
        return self._obs(ts.observation), float(ts.reward), terminated, bool(last and not terminated), info


def make_bsuite(cfg, render_mode: str | None = None) -> gym.Env:
    """The env family's constructor: env.kwargs become bsuite settings, env.max_episode_steps a TimeLimit."""
    if render_mode is not None:
        raise UserError(f"bsuite envs cannot render ({render_mode!r}); drop --video for {cfg.id!r}")
    kwargs = dict(cfg.kwargs)
    env: gym.Env = BsuiteEnv(cfg.id, **kwargs)
    if cfg.max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, cfg.max_episode_steps)
    return env


def register() -> None:
    from howsure.envs.make import FAMILIES, EnvFamily, register_family

    if not any(f.name == "bsuite" for f in FAMILIES):
        try:
            family = EnvFamily("bsuite", is_bsuite, make_bsuite, check=check_id)
        except TypeError:  # an EnvFamily without `check`: make() still raises the UserError
            family = EnvFamily("bsuite", is_bsuite, make_bsuite)
        register_family(family)
