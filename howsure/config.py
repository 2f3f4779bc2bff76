"""Typed, frozen run configuration: YAML preset -> dataclasses -> `key=value` overrides.

Every section is a frozen dataclass. The `agent` section's dataclass is picked by `agent.name`
from the agent registry, the `encoder` and `replay` sections hold one sub-section per registered
component. Unknown keys and wrong types raise UserError naming the key and the valid choices.
No eval(), no globals: values are parsed with yaml.safe_load and checked against the field types.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from howsure.errors import UserError
from howsure.registry import suggest


@dataclass(frozen=True)
class EnvConfig:
    id: str = "CartPole-v1"
    num_envs: int = 1  # environments stepped together while acting
    env_workers: bool = False  # envs in worker processes, stepping while the update runs (train.py)
    # Atari only: "ale_vector" steps the games on ale-py's C++ threads (envs/ale_vector.py), several
    # times faster than gymnasium's Python wrappers and stepping while the agent trains
    backend: Literal["gymnasium", "ale_vector"] = "gymnasium"
    env_threads: int = 1  # ale_vector: C++ threads stepping the games
    max_episode_steps: int | None = None  # agent steps; None keeps the env's own limit
    kwargs: dict = field(default_factory=dict)  # passed to gymnasium.make (e.g. NChain length)
    # Atari (ALE/<Game>-v5) only; arXiv:1312.5602 / Nature 2015 preprocessing, Machado et al. 2018.
    sticky_action_prob: float = 0.25  # repeat_action_probability; 0.25 is the published protocol
    full_action_space: bool = False  # False: the game's minimal action set
    noop_max: int = 30  # up to this many no-op agent steps at reset
    frame_skip: int = 4  # emulator frames per agent step (max-pooled over the last two)
    screen_size: int = 84  # pixels, square grayscale
    frame_stack: int = 4  # agent steps stacked into one observation
    max_episode_frames: int = 108_000  # emulator frames: 30 minutes of play at 60 Hz
    flicker_prob: float = 0.0  # each agent-step screen blanked with this probability (DRQN's Flickering Pong)
    # a detector checkpoint (python -m encoders.detection fit): each screen is detected once, in the
    # env, and the agent sees its top-K objects instead of pixels (envs/objects.py); null: pixels
    detector: str | None = None
    detector_top_k: int = 8  # objects kept per screen
    detector_min_score: float = 0.3  # weaker detections become empty rows


@dataclass(frozen=True)
class EvalConfig:
    every_steps: int = 10_000  # agent steps between evaluations during training; 0 = never
    episodes: int = 10  # full episodes per evaluation
    epsilon: float = 0.0  # exploration while evaluating (Nature DQN used 0.05 on Atari)
    num_envs: int = 8  # episodes played side by side
    stop_return: float | None = None  # stop training once the evaluated mean reaches this
    # every this many evaluations (the first included) the first evaluation episode goes to
    # TensorBoard as an animated image (eval/video) at the game's real speed; 0 = never
    video_every_evals: int = 0


@dataclass(frozen=True)
class LogConfig:
    every_steps: int = 1_000  # agent steps between loss/SPS scalars
    quiet: bool = False  # no progress bar, only the closing summary


@dataclass(frozen=True)
class DistributedConfig:
    """Ape-X style acting on Ray (Horgan et al., arXiv:1803.00933); howsure/distributed.py."""

    actors: int = 0  # Ray actors stepping envs; 0: single process, Ray is not imported
    address: str = ""  # Ray cluster to join ("auto", "ray://host:10001"); empty: $RAY_ADDRESS, else a local Ray
    chunk_steps: int = 64  # agent steps an actor sends at once, summed over its envs
    weights_every_updates: int = 50  # gradient updates between weight broadcasts to the actors
    exploration: Literal["auto", "ape_x_epsilon", "agent"] = "auto"  # auto: ape_x_epsilon for dqn
    epsilon: float = 0.4  # Ape-X: actor i of N explores with epsilon ** (1 + i / (N - 1) * alpha)
    alpha: float = 7.0
    cpus_per_actor: float = 1.0  # Ray CPUs reserved per actor (0.5 packs two actors on a core)
    max_actor_restarts: int = 20  # actors re-created after a crash before the run gives up


@dataclass(frozen=True)
class Config:
    seed: int = 0
    total_steps: int = 100_000  # agent steps, summed over parallel envs
    # wall-clock cap: training stops (with its final checkpoint) once this many minutes have passed,
    # evaluations included; null: no cap
    time_limit_minutes: float | None = None
    run_dir: str = ""  # empty: runs/<env>__<agent>__s<seed>__<time>
    device: str = "cpu"  # cpu | cuda | cuda:N
    torch_threads: int = 0  # 0 keeps torch's default (one per core)
    flush_denormal: bool = False  # flush subnormal floats to zero (x86): faster late-training updates
    learner_thread: bool = False  # learn on a thread while the loop acts (at most one training round behind)
    checkpoint_every_steps: int = 50_000  # agent steps; a final checkpoint is always written
    checkpoint_replay: bool = True  # save the replay beside each checkpoint so --resume keeps it
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: Any = None  # dataclass chosen by agent.name (agents/ registry)
    encoder: Any = None  # one sub-section per registered encoder, plus `name`
    replay: Any = None  # one sub-section per registered replay kind, plus `kind`
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


# --------------------------------------------------------------------------- type checking


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against `tp`, converting the lossless cases (int->float, '1e-4'->float)."""
    origin = typing.get_origin(tp)
    bad = UserError(
        f"config key {key!r} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})"
    )
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except UserError:
                pass
        raise bad
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool):  # YAML 1.1 reads a bare off/on/no/yes as a bool
            spelled = {"off", "no", "false"} if not value else {"on", "yes", "true"}
            named = [c for c in choices if isinstance(c, str) and c.lower() in spelled]
            if len(named) == 1:
                return named[0]
        if value in choices and not isinstance(value, bool):
            return value
        raise UserError(
            f"config key {key!r} must be one of {', '.join(map(repr, choices))}, got {value!r}"
            + suggest(str(value), [str(c) for c in choices])
        )
    if origin is tuple:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, (list, tuple)):
            raise bad
        (elem,) = typing.get_args(tp)[:1]
        return tuple(_coerce(v, elem, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                try:
                    as_float = float(value)
                except ValueError:
                    raise bad from None
                if as_float.is_integer():
                    return int(as_float)
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if tp is dict:
        if isinstance(value, dict):
            return dict(value)
        raise bad
    raise TypeError(f"config field {key!r} has an unsupported type {tp!r}")


def build(cls: type, raw: Any, prefix: str = "", owner: str = "") -> Any:
    """Build dataclass `cls` from a plain dict, naming the offending key on any error."""
    if raw is None:
        raw = {}
    if dataclasses.is_dataclass(raw) and not isinstance(raw, type):
        raw = to_dict(raw)
    if not isinstance(raw, dict):
        raise UserError(f"config section {prefix.rstrip('.') or '<top>'!r} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            raise UserError(
                f"unknown config key {prefix + str(key)!r}{owner}"
                + suggest(prefix + str(key), [prefix + n for n in names])
            )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        tp = hints[f.name]
        key = prefix + f.name
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = build(tp, raw[f.name], key + ".")
        else:
            kwargs[f.name] = _coerce(raw[f.name], tp, key)
    return cls(**kwargs)


# --------------------------------------------------------------------------- loading


def parse_overrides(overrides: list[str]) -> dict:
    """['agent.lr=1e-4', 'seed=3'] -> {'agent': {'lr': '1e-4'}, 'seed': 3} (YAML scalars)."""
    tree: dict = {}
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise UserError(f"override {item!r} is not key=value (for example agent.lr=1e-4)")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            value = text
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override {item!r} sets a key inside {part!r}, which is a value")
        node[parts[-1]] = value
    return tree


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "kwargs":
            out[key] = merge(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} not found (presets are in configs/)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {str(path)!r} is not valid YAML{where}: fix the syntax") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"config file {str(path)!r} must hold a mapping of sections")
    return raw


def from_dict(raw: dict) -> Config:
    """Resolve the component-dependent sections, then build and check the whole config."""
    import agents
    import encoders
    import replay

    raw = dict(raw)
    agent_raw = dict(raw.get("agent") or {})
    agent_name = _coerce(agent_raw.get("name", "dqn"), str, "agent.name")
    agent_cls = agents.AGENTS.get(agent_name).Config
    agent_raw["name"] = agent_name
    raw["agent"] = agent_raw
    top = build(Config, {k: v for k, v in raw.items() if k not in ("agent", "encoder", "replay")})
    cfg = dataclasses.replace(
        top,
        agent=build(agent_cls, agent_raw, "agent.", owner=f" for agent {agent_name!r}"),
        encoder=build(encoders.encoder_config_class(), raw.get("encoder"), "encoder."),
        replay=build(replay.replay_config_class(), raw.get("replay"), "replay."),
    )
    if cfg.encoder.name != "auto":
        encoders.ENCODERS.get(cfg.encoder.name)
    replay.REPLAYS.get(cfg.replay.kind)
    return cfg


def load(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    raw = read_yaml(path) if path else {}
    return from_dict(merge(raw, parse_overrides(overrides or [])))


def to_dict(cfg: Any) -> dict:
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def from_yaml(text: str) -> Config:
    return from_dict(yaml.safe_load(text) or {})


_SECTIONS: dict[tuple, type] = {}


def component_section(name: str, members: dict[str, type], selector: str, default: str) -> type:
    """A frozen dataclass with a `selector` field plus one sub-section per registered component.

    Cached, so the same registry contents always give the same class (configs compare equal).
    """
    key = (name, selector, default, tuple(members.items()))
    if key not in _SECTIONS:
        _SECTIONS[key] = _make_section(name, members, selector, default)
    return _SECTIONS[key]


def _make_section(name: str, members: dict[str, type], selector: str, default: str) -> type:
    fields_ = [(selector, str, field(default=default))]
    fields_ += [(n, cls, field(default_factory=cls)) for n, cls in members.items()]
    return dataclasses.make_dataclass(name, fields_, frozen=True)
