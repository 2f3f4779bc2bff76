"""Typed, frozen run configuration: the schema, YAML reading, `key=value` overrides and checks.

Every section is a frozen dataclass. This module knows no agent, encoder or replay: the sections
that depend on registered components are put in by howsure/wiring.py, which builds whole configs.
Unknown keys and wrong types raise UserError naming the key and the valid choices; so do values
out of range, checked against one table (RULES) once the config is built.
No eval(), no globals: values are parsed with yaml.safe_load and checked against the field types.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Literal, Union

import yaml

from howsure.errors import UserError
from howsure.registry import suggest


@dataclass(frozen=True)
class EnvConfig:
    id: str = "CartPole-v1"
    num_envs: int = 1  # environments stepped together while acting
    env_workers: bool | Literal["auto"] = False  # envs in worker processes, stepping while the update runs (train.py)
    # Atari only: "ale_vector" steps the games on ale-py's C++ threads (envs/ale_vector.py), several
    # times faster than gymnasium's Python wrappers and stepping while the agent trains
    backend: Literal["gymnasium", "ale_vector"] = "gymnasium"
    env_threads: int = 1  # ale_vector: C++ threads stepping the games
    max_episode_steps: int | None = None  # agent steps; None keeps the env's own limit
    # passed to gymnasium.make (e.g. NChain length). An override adds to a preset's kwargs
    # (env.kwargs.map_name=8x8, env.kwargs={map_name: 8x8}); env.kwargs=null (or {}) drops them all,
    # and env.kwargs=null env.kwargs.map_name=8x8 leaves only the keys set after it
    kwargs: dict = field(default_factory=dict)
    # third-party envs: env.id=package.module:EnvName-v0 imports the module first (gymnasium's
    # convention); register=package.module:function calls a package's registration function first
    register: str | None = None
    # Atari (ALE/<Game>-v5) only; arXiv:1312.5602 / Nature 2015 preprocessing, Machado et al. 2018.
    sticky_action_prob: float = 0.25  # repeat_action_probability; 0.25 is the published protocol
    full_action_space: bool = False  # False: the game's minimal action set
    noop_max: int = 30  # up to this many no-op emulator frames at reset (gymnasium's and SB3's unit)
    frame_skip: int = 4  # emulator frames per agent step (max-pooled over the last two)
    screen_size: int = 84  # pixels, square grayscale
    frame_stack: int = 4  # agent steps stacked into one observation
    max_episode_frames: int = 108_000  # emulator frames: 30 minutes of play at 60 Hz
    flicker_prob: float = 0.0  # each agent-step screen blanked with this probability (DRQN's Flickering Pong)
    # a detector checkpoint (python -m howsure.detector fit): each screen is detected once, in the
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
    track: bool = False  # mirror TensorBoard to Weights & Biases (train.py --track; howsure/tracking.py)
    wandb_project: str = "howsure"
    wandb_entity: str = ""  # empty: wandb's default entity
    # keys TensorBoard's HParams table shows even at their default value (a grid sweep sets its
    # swept keys, so a point at the default is not an empty cell)
    hparams: tuple[str, ...] = ()


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
    # speed switches: "auto" lets howsure/runtime.py decide from this machine's CPU at start-up,
    # and the run's config.yaml and checkpoints hold what was decided
    torch_threads: int | Literal["auto"] = 0  # 0 keeps torch's default (one per core)
    flush_denormal: bool | Literal["auto"] = False  # flush subnormal floats to zero (x86): faster late-training updates
    # keep memory freed by one update for the next (glibc's allocator) instead of handing it back to
    # the OS and faulting it in again: ~1,000 page faults per Nature-CNN update on Pong (process-wide)
    reuse_freed_memory: bool | Literal["auto"] = False
    # learn on a thread while the loop acts (at most one training round behind)
    learner_thread: bool | Literal["auto"] = False
    checkpoint_every_steps: int = 50_000  # agent steps; a final checkpoint is always written
    checkpoint_replay: bool = True  # save the replay beside each checkpoint so --resume keeps it
    env: EnvConfig = field(default_factory=EnvConfig)
    # the component sections, built by howsure/wiring.py from the registries:
    agent: Any = None  # dataclass chosen by agent.name (agents/ registry)
    encoder: Any = None  # one sub-section per registered encoder, plus `name`
    replay: Any = None  # settings shared by the kinds, plus one sub-section per replay kind and `kind`
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


def coerce(value: Any, tp: Any, key: str) -> Any:
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
                return coerce(value, arg, key)
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
            try:
                value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
            except yaml.YAMLError:
                raise UserError(f"config key {key!r} must be {_type_name(tp)}, got {value!r}, which is not a "
                                "valid YAML list: close its brackets, e.g. [64, 64]") from None
        if not isinstance(value, (list, tuple)):
            raise bad
        (elem,) = typing.get_args(tp)[:1]
        return tuple(coerce(v, elem, key) for v in value)
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
    if tp is dict:  # env.kwargs: null (or "null" on the command line) is none at all
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return {}
        if isinstance(value, dict):
            return dict(value)
        raise UserError(f"config key {key!r} must be a mapping such as {{name: value}} or null for none, "
                        f"got {value!r} ({type(value).__name__}); set one entry with {key}.NAME=VALUE")
    raise TypeError(f"config field {key!r} has an unsupported type {tp!r}")


def build(cls: type, raw: Any, prefix: str = "", owner: str = "") -> Any:
    """Build dataclass `cls` from a plain dict, naming the offending key on any error."""
    if raw is None:
        raw = {}
    if dataclasses.is_dataclass(raw) and not isinstance(raw, type):
        raw = to_dict(raw)
    if not isinstance(raw, dict):
        names = {f.name for f in dataclasses.fields(cls)}
        raise not_a_mapping(prefix.rstrip(".") or "<top>", raw, next((k for k in ("name", "kind") if k in names), None))
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
            kwargs[f.name] = coerce(raw[f.name], tp, key)
    return cls(**kwargs)


def not_a_mapping(section: str, raw: Any, picker: str | None = None) -> UserError:
    """The error for a section given as a value (agent=dqn, a YAML `agent: [dqn]`); where the value
    is a word and the section has a key that picks a component (`picker`), the fix names that key."""
    if isinstance(raw, str) and raw.strip() and picker:
        fix = f"to pick one, set {section}.{picker}={raw}"
    else:
        fix = f"set its keys one by one ({section}.KEY=VALUE) or as {section}={{KEY: VALUE}}"
    return UserError(f"config section {section!r} must be a mapping of keys, got {raw!r}; {fix}")


# --------------------------------------------------------------------------- value checks


@dataclass(frozen=True)
class Check:
    """The values a key accepts: `test` on the value (on each element of a list), `text` for the error."""

    test: Callable[[Any], bool]
    text: str


def _between(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Check:
    def test(v: Any) -> bool:
        return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)

    return Check(test, f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}")


def _at_least(lo: int) -> Check:
    return Check(lambda v: v >= lo, f"an integer >= {lo}")


PROBABILITY = _between(0, 1)  # probabilities, discounts, fractions
RATE = _between(0, 1, lo_open=True)  # (0, 1]: zero would mean "never"
BELOW_ONE = _between(0, 1, hi_open=True)  # [0, 1): dropout rates, momentum
POSITIVE = Check(lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
NON_NEGATIVE = Check(lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
COUNT = _at_least(1)  # sizes and counts
NON_NEGATIVE_INT = _at_least(0)  # seeds, steps to wait, 0 = off

# Every range check of the config, by dotted key. A key applies wherever it exists: the agent.*
# rows check each agent that has the field; a list's elements are checked one by one. Types are
# checked earlier, by build(); every float must also be finite (validate()). Every int or float
# field has a row here, except those where any finite number is meaningful (agent.initial_q,
# eval.stop_return); tests/test_config.py holds that list.
RULES: dict[str, Check] = {
    "seed": NON_NEGATIVE_INT,
    "total_steps": COUNT,
    "time_limit_minutes": POSITIVE,
    "torch_threads": NON_NEGATIVE_INT,
    "checkpoint_every_steps": NON_NEGATIVE_INT,
    "env.num_envs": COUNT,
    "env.env_threads": COUNT,
    "env.max_episode_steps": COUNT,
    "env.sticky_action_prob": PROBABILITY,
    "env.noop_max": NON_NEGATIVE_INT,
    "env.frame_skip": COUNT,
    "env.screen_size": COUNT,
    "env.frame_stack": COUNT,
    "env.max_episode_frames": COUNT,
    "env.flicker_prob": PROBABILITY,
    "env.detector_top_k": COUNT,
    "env.detector_min_score": PROBABILITY,
    "eval.every_steps": NON_NEGATIVE_INT,
    "eval.episodes": COUNT,
    "eval.epsilon": PROBABILITY,
    "eval.num_envs": COUNT,
    "eval.video_every_evals": NON_NEGATIVE_INT,
    "log.every_steps": NON_NEGATIVE_INT,
    "distributed.actors": NON_NEGATIVE_INT,
    "distributed.chunk_steps": COUNT,
    "distributed.weights_every_updates": COUNT,
    "distributed.epsilon": PROBABILITY,
    "distributed.alpha": NON_NEGATIVE,
    "distributed.cpus_per_actor": POSITIVE,
    "distributed.max_actor_restarts": NON_NEGATIVE_INT,
    "agent.gamma": PROBABILITY,
    "agent.q_lambda": PROBABILITY,
    "agent.lr": POSITIVE,
    "agent.optimizer_eps": POSITIVE,
    "agent.rmsprop_alpha": PROBABILITY,
    "agent.rmsprop_momentum": BELOW_ONE,
    "agent.batch_size": COUNT,
    "agent.learning_starts_steps": NON_NEGATIVE_INT,
    "agent.train_every_steps": COUNT,
    "agent.updates_per_train": COUNT,
    "agent.target_update_every_updates": COUNT,
    "agent.target_tau": RATE,
    "agent.head_hidden": NON_NEGATIVE_INT,
    "agent.head_hidden_sizes": COUNT,
    "agent.max_grad_norm": NON_NEGATIVE,
    "agent.epsilon_start": PROBABILITY,
    "agent.epsilon_end": PROBABILITY,
    "agent.epsilon_floor": PROBABILITY,
    "agent.epsilon_decay_steps": NON_NEGATIVE_INT,
    "agent.rollout_steps": COUNT,
    "agent.lr_decay_steps": NON_NEGATIVE_INT,
    "agent.lr_end": NON_NEGATIVE,
    "agent.epochs": COUNT,
    "agent.minibatches": COUNT,
    "agent.target_every_rollouts": NON_NEGATIVE_INT,
    "agent.num_heads": COUNT,
    "agent.mask_prob": RATE,
    "agent.prior_scale": NON_NEGATIVE,
    "agent.dropout_p": BELOW_ONE,
    "agent.concrete_temperature": POSITIVE,
    "agent.length_scale": POSITIVE,
    "agent.tau_precision": POSITIVE,
    "agent.n_data_max_steps": NON_NEGATIVE_INT,
    "agent.ucb_kappa": NON_NEGATIVE,
    "agent.n_draws": COUNT,
    "agent.n_masks": NON_NEGATIVE_INT,
    "agent.epinet_hidden": NON_NEGATIVE_INT,
    "agent.epinet_index_dim": COUNT,
    "agent.epinet_prior_scale": NON_NEGATIVE,
    "agent.mask_bootstrap": RATE,
    "encoder.mlp.hidden_sizes": COUNT,
    "encoder.nature_cnn.features": COUNT,
    "encoder.nips_cnn.features": COUNT,
    "encoder.lstm.embed_hidden_sizes": COUNT,
    "encoder.lstm.embed_features": COUNT,
    "encoder.lstm.hidden_size": COUNT,
    "encoder.lstm.num_layers": COUNT,
    "encoder.lstm.chrono_init_steps": Check(lambda v: v == 0 or v >= 3, "0 (off) or an integer >= 3"),
    "encoder.grid_cnn.channels": COUNT,
    "encoder.grid_cnn.features": COUNT,
    "encoder.grid_cnn.scale": POSITIVE,
    "encoder.parts.hidden_sizes": COUNT,
    "encoder.parts.image_features": COUNT,
    "encoder.parts.grid_channels": COUNT,
    "encoder.detection.top_k": COUNT,
    "encoder.detection.candidates": COUNT,
    "encoder.detection.iou_threshold": PROBABILITY,
    "encoder.detection.min_score": PROBABILITY,
    "encoder.detection.hidden": COUNT,
    "encoder.detection.heads": COUNT,
    "encoder.detection.features": COUNT,
    "replay.capacity_steps": COUNT,
    "replay.n_step": COUNT,
    "replay.priority.alpha": NON_NEGATIVE,
    "replay.priority.beta_start": PROBABILITY,
    "replay.priority.beta_anneal_steps": NON_NEGATIVE_INT,
    "replay.priority.eps": POSITIVE,
    "replay.sequence.length_steps": COUNT,
    "replay.sequence.burn_in_steps": NON_NEGATIVE_INT,
    "replay.sequence.stride_steps": COUNT,
}

_MISSING = object()
_DEVICE = re.compile(r"^(cpu|cuda(:[0-9]+)?|mps)$")


def lookup(cfg: Any, key: str) -> Any:
    """The value at a dotted key, or _MISSING where this config has no such field."""
    node = cfg
    for part in key.split("."):
        node = getattr(node, part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def _floats(node: Any, prefix: str = ""):
    """(key, value) of every float in a config, list elements included (env.kwargs is the env's)."""
    for f in dataclasses.fields(node):
        value, key = getattr(node, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from _floats(value, key + ".")
        elif isinstance(value, float):
            yield key, value
        elif isinstance(value, tuple):
            yield from ((key, v) for v in value if isinstance(v, float))


def check_device(device: str, check_machine: bool = True) -> None:
    """`device` must name a torch device; with check_machine, one this machine has."""
    if not _DEVICE.match(device):
        raise UserError(f"config key 'device' must be cpu, cuda or cuda:N, got {device!r}")
    if not check_machine or device == "cpu":
        return
    import torch

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("config key 'device' is 'mps' but this machine has no Apple GPU; set device=cpu")
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.split(":")[1]) if ":" in device else 0
    if count == 0:
        raise UserError(f"config key 'device' is {device!r} but torch sees no CUDA GPU on this machine; "
                        "set device=cpu")
    if index >= count:
        raise UserError(f"config key 'device' is {device!r} but this machine has {count} CUDA GPU(s), "
                        f"cuda:0 to cuda:{count - 1}")


def validate(cfg: Config, check_machine: bool = True) -> None:
    """Range checks of RULES, finite floats everywhere, a device that exists: UserError naming the key."""
    for key, value in _floats(cfg):
        if not math.isfinite(value):
            raise UserError(f"config key {key!r} must be a finite number, got {value!r}")
    for key, check in RULES.items():
        value = lookup(cfg, key)
        # auto: decided at start-up (runtime.py); time_limit: a schedule over the wall-clock cap
        if value is _MISSING or value is None or value in ("auto", "time_limit"):
            continue
        if isinstance(value, tuple):
            if not all(check.test(v) for v in value):
                raise UserError(f"config key {key!r} must be a list whose every value is {check.text}, "
                                f"got {list(value)!r}")
        elif not check.test(value):
            raise UserError(f"config key {key!r} must be {check.text}, got {value!r}")
    if getattr(cfg.agent, "lr_decay_steps", None) == "time_limit" and cfg.time_limit_minutes is None:
        raise UserError("agent.lr_decay_steps=time_limit anneals over the wall-clock cap, and this run has none: "
                        "set time_limit_minutes, or give lr_decay_steps a number of agent steps")
    for key in cfg.log.hparams:
        if key == "log.hparams" or lookup(cfg, key) is _MISSING or dataclasses.is_dataclass(lookup(cfg, key)):
            raise UserError(f"log.hparams names {key!r}, which is not a config value of this run; name dotted "
                            "keys such as agent.lr")
    check_device(cfg.device, check_machine)


# --------------------------------------------------------------------------- loading


class _Replace(dict):
    """Keys set inside a section an earlier override made null (env.kwargs=null env.kwargs.map_name=8x8):
    they replace that section of the config file instead of merging into it."""


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
            if part in node and node[part] is None:  # reset by an earlier override: start it afresh
                node[part] = _Replace()
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override {item!r} sets a key inside {part!r}, which is a value")
        node[parts[-1]] = value
    return tree


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, _Replace):
            out[key] = dict(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict) and key != "kwargs":
            out[key] = merge(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):  # env.kwargs: {} clears them
            out[key] = {**out[key], **value} if value else {}
        else:
            out[key] = value
    return out


def preset_names() -> list[str]:
    """The shipped presets (configs/*.yaml, installed as howsure.configs), by name."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("howsure.configs").iterdir()
                  if p.name.endswith(".yaml"))


def preset_path(name: str | Path) -> Path:
    """A config file's path: a file that exists, else the shipped preset of that name
    (`dqn_cartpole`, `dqn_cartpole.yaml` or `configs/dqn_cartpole.yaml`)."""
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name.removesuffix(".yaml")
    shipped = Path(str(resources.files("howsure.configs") / f"{stem}.yaml"))
    if path.parent in (Path("."), Path("configs")) and shipped.is_file():
        return shipped
    if path.suffix in ("", ".yaml") and path.parent in (Path("."), Path("configs")):
        raise UserError(f"config {str(name)!r} not found: no such file and no such preset"
                        f"{suggest(stem, preset_names())}")
    if path.is_dir():
        raise UserError(f"config {str(path)!r} is a folder; pass a YAML file or a preset's name, e.g. dqn_cartpole")
    raise UserError(f"config file {str(path)!r} not found; pass a YAML file or a preset's name, e.g. dqn_cartpole")


def read_yaml(path: str | Path) -> dict:
    path = preset_path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise UserError(f"config file {str(path)!r} is not text (binary data?); "
                        "pass a YAML preset such as configs/dqn_cartpole.yaml") from None
    except OSError as err:
        raise UserError(f"config file {str(path)!r} cannot be read ({err.strerror})") from None
    if "\x00" in text:
        raise UserError(f"config file {str(path)!r} holds NUL bytes (binary data?); "
                        "pass a YAML preset such as configs/dqn_cartpole.yaml")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {str(path)!r} is not valid YAML{where}: fix the syntax") from None
    if raw is None:
        raise UserError(f"config file {str(path)!r} is empty; start from a preset in configs/")
    if not isinstance(raw, dict):
        raise UserError(f"config file {str(path)!r} must hold a mapping of sections")
    return raw


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
