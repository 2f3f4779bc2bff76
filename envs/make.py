"""make_env: every env family behind one function, picked by env id through a registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
import yaml
from gymnasium import spaces
from howsure.envs import atari
from howsure.envs.parts import PackParts

from howsure.errors import UserError
from howsure.registry import suggest


@dataclass(frozen=True)
class EnvFamily:
    name: str
    matches: Callable[[str], bool]
    make: Callable[..., gym.Env]  # (env_cfg, render_mode) -> gym.Env
    check: Callable[[str], None] | None = None  # raises UserError for an unknown id; None: gym.registry


# Checked in order; the plain gymnasium family is the fallback and goes last.
FAMILIES: list[EnvFamily] = []


def register_family(family: EnvFamily, first: bool = True) -> None:
    FAMILIES.insert(0 if first else len(FAMILIES), family)


def _make_gym(cfg, render_mode: str | None = None) -> gym.Env:
    kwargs = dict(cfg.kwargs)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    return gym.make(cfg.id, render_mode=render_mode, **kwargs)


register_family(EnvFamily("atari", atari.is_atari, atari.make_atari))
register_family(EnvFamily("gymnasium", lambda env_id: True, _make_gym), first=False)


def family_of(env_id: str) -> EnvFamily:
    return next(f for f in FAMILIES if f.matches(env_id))


def ale_equivalent(env_id: str) -> str | None:
    """For ale-py's older registrations (PongNoFrameskip-v4, Breakout-v0, ...) the ALE/ id that
    howsure preprocesses; None for any other id."""
    entry = gym.registry.get(env_id)
    if entry is None or env_id.startswith("ALE/") or "ale_py" not in str(entry.entry_point):
        return None
    game = env_id.rsplit("-v", 1)[0].replace("NoFrameskip", "").replace("Deterministic", "")
    ram = game.endswith("-ram")
    return f"ALE/{game.removesuffix('-ram')}{'-ram' if ram else ''}-v5"


def _pip_hint(module: str) -> str:
    return f"pip install {module.split('.')[0].replace('_', '-')}"


def _import(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise UserError(f"{what} names module {module!r}, which cannot be imported ({err}); install the "
                        f"package that provides it (e.g. {_pip_hint(module)})") from None
    except Exception as err:  # noqa: BLE001 - a third-party module failing at import
        raise UserError(f"{what}: importing {module!r} failed ({type(err).__name__}: {str(err)[:100]})") from None


def register_third_party(register: str | None) -> None:
    """env.register=package.module:function: call the package's registration function (once per
    process; registering twice is harmless in gymnasium, it only warns)."""
    if not register:
        return
    module, sep, func = register.partition(":")
    if not sep or not module or not func:
        raise UserError(f"env.register must be package.module:function, got {register!r}")
    fn = getattr(_import(module, "env.register"), func, None)
    if not callable(fn):
        raise UserError(f"env.register: module {module!r} has no function {func!r}")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "overriding environment ..." on a second call
            fn()
    except Exception as err:  # noqa: BLE001 - a third-party registration failing
        raise UserError(f"env.register: {register}() failed ({type(err).__name__}: {str(err)[:100]})") from None


def check_id(env_id: str) -> None:
    if ":" in env_id:  # package.module:EnvName-v0, gymnasium's form for third-party envs
        module, _, name = env_id.partition(":")
        _import(module, f"env.id {env_id!r}")
        if name not in gym.registry:
            raise UserError(f"module {module!r} registers no env {name!r}{suggest(name, list(gym.registry))}")
        return
    alias = ale_equivalent(env_id)
    if alias is not None:
        raise UserError(
            f"env id {env_id!r} is ale-py's raw registration, without the Atari preprocessing; use "
            f"env.id={alias} (env.sticky_action_prob=0 gives the v4 protocol without sticky actions)")
    family = family_of(env_id)
    if family.check is not None:
        family.check(env_id)
    elif env_id not in gym.registry:
        raise UserError(f"unknown env id {env_id!r}{suggest(env_id, list(gym.registry))}")


def make_env(cfg, render_mode: str | None = None) -> gym.Env:
    """One environment, as the config describes it, with its action space checked."""
    register_third_party(cfg.register)
    check_id(cfg.id)
    family = family_of(cfg.id)
    if family.name != "atari":  # the screen wrappers
        if cfg.detector:
            raise UserError(f"env.detector works on ALE/ games (screens), not on {cfg.id!r}: set env.detector=null")
        if cfg.flicker_prob > 0:
            raise UserError(f"env.flicker_prob blanks ALE/ game screens, not observations of {cfg.id!r}: "
                            "set env.flicker_prob=0")
    try:
        env = family.make(cfg, render_mode=render_mode)
    except gym.error.DependencyNotInstalled as err:
        raise UserError(f"env {cfg.id!r} needs an optional dependency: {str(err).splitlines()[0]}") from None
    except (TypeError, ValueError, LookupError, AssertionError, gym.error.Error) as err:
        # a constructor's own check of a bad kwarg: FrozenLake's KeyError for map_name=9x9, an assert
        said = (str(err).splitlines() or [""])[0].split(" was raised from the environment creator")[0][:200]
        if not isinstance(err, (TypeError, ValueError, gym.error.Error)) or not said:
            said = f"{type(err).__name__}: {said}" if said else type(err).__name__
        given = yaml.safe_dump(cfg.kwargs, default_flow_style=True, sort_keys=False).strip() if cfg.kwargs else "empty"
        raise UserError(f"env {cfg.id!r} rejected its settings ({said}); check env.kwargs (now {given}): "
                        "env.kwargs.NAME=VALUE changes one, env.kwargs=null drops them all") from None
    if isinstance(env.observation_space, (spaces.Dict, spaces.Tuple)):
        env = PackParts(env, cfg.id)  # one flat row, each part in its own slice (envs/parts.py)
    check_spaces(cfg.id, env.action_space, env.observation_space)
    return env


def check_spaces(env_id: str, action_space: spaces.Space, obs_space: spaces.Space) -> None:
    if not isinstance(action_space, spaces.Discrete):
        raise UserError(
            f"env {env_id!r} has a {type(action_space).__name__} action space; howsure's agents "
            "need a discrete one (for example CartPole-v1, Acrobot-v1 or an ALE/ game)"
        )
    if not isinstance(obs_space, (spaces.Box, spaces.Discrete)):
        raise UserError(
            f"env {env_id!r} has a {type(obs_space).__name__} observation space; "
            "howsure handles Box (vectors, images), Discrete, and Dict or Tuple observations of those"
        )


@dataclass(frozen=True)
class EnvSpec:
    """What agents and replay need to know about an env, without holding it."""

    env_id: str
    obs_space: spaces.Space
    n_actions: int

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.obs_space.shape or ())

    @property
    def obs_dtype(self) -> np.dtype:
        return np.dtype(self.obs_space.dtype)

    @property
    def discrete_obs(self) -> bool:
        return isinstance(self.obs_space, spaces.Discrete)

    @property
    def n_obs(self) -> int:
        """Number of states of a Discrete observation space."""
        return int(self.obs_space.n)

    @property
    def image_obs(self) -> bool:
        # (C, H, W) or (H, W, C) of any dtype; a 2-D grid when its cells are uint8 or bool
        return len(self.obs_shape) == 3 or (self.obs_dtype in (np.uint8, np.bool_) and len(self.obs_shape) >= 2)

    @property
    def parts(self) -> tuple | None:
        """The layout of a Dict or Tuple observation packed into one row (envs/parts.py), else None."""
        return getattr(self.obs_space, "parts", None) or None

    def meta(self) -> dict:
        return {"env_id": self.env_id, "obs_shape": list(self.obs_shape),
                "obs_dtype": str(self.obs_dtype), "n_actions": self.n_actions}


def spec_of(env_id: str, env: gym.Env | gym.vector.VectorEnv) -> EnvSpec:
    obs_space = getattr(env, "single_observation_space", env.observation_space)
    action_space = getattr(env, "single_action_space", env.action_space)
    return EnvSpec(env_id, obs_space, int(action_space.n))
