"""Whole configs: the schema of howsure/config.py with the sections the component registries define.

The `agent` section's dataclass is picked by `agent.name` from the agent registry; the `encoder`
and `replay` sections come from their registries (one sub-section per component). This is the
one module that knows both the schema and the components, so config.py imports none of them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from howsure import agents, encoders, replay
from howsure.config import Config, build, coerce, merge, not_a_mapping, parse_overrides, read_yaml, validate
from howsure.errors import UserError

# replay keys of earlier versions, flat in the replay section, and where they live now
MOVED_REPLAY_KEYS = {
    "priority_alpha": ("priority", "alpha"),
    "priority_beta_start": ("priority", "beta_start"),
    "beta_anneal_steps": ("priority", "beta_anneal_steps"),
    "priority_eps": ("priority", "eps"),
    "compress": ("atari", "compress"),
    "sequence_length_steps": ("sequence", "length_steps"),
    "burn_in_steps": ("sequence", "burn_in_steps"),
    "sequence_stride_steps": ("sequence", "stride_steps"),
    "stored_state": ("sequence", "stored_state"),
}


def move_replay_keys(raw_replay: object, *, saved: bool) -> object:
    """Flat replay keys of earlier versions: moved into their sub-sections for a saved config
    (checkpoints and exports keep loading); for a config a user wrote, an error naming the new key."""
    if not isinstance(raw_replay, dict) or not any(k in MOVED_REPLAY_KEYS for k in raw_replay):
        return raw_replay
    out = {k: v for k, v in raw_replay.items() if k not in MOVED_REPLAY_KEYS}
    for key, (section, name) in MOVED_REPLAY_KEYS.items():
        if key not in raw_replay:
            continue
        if not saved:
            raise UserError(f"config key 'replay.{key}' is now 'replay.{section}.{name}'; rename it")
        sub = out.setdefault(section, {})
        if isinstance(sub, dict):
            sub.setdefault(name, raw_replay[key])
    return out


def from_dict(raw: dict, *, check_machine: bool = True, saved: bool = False) -> Config:
    """Resolve the component-dependent sections, then build and check the whole config.

    check_machine: also refuse a device this machine lacks (off for configs that are only read,
    such as the one saved in a checkpoint, before overrides may change the device).
    saved: the config was written by howsure (a checkpoint, an export), possibly by an earlier version.
    """
    if not isinstance(raw, dict):
        raise not_a_mapping("<top>", raw)
    raw = dict(raw)
    agent_raw = raw.get("agent")
    if agent_raw is None:
        agent_raw = {}
    if not isinstance(agent_raw, dict):  # agent=dqn, a YAML `agent: [dqn]`
        raise not_a_mapping("agent", agent_raw, "name")
    agent_raw = dict(agent_raw)
    agent_name = coerce(agent_raw.get("name", "dqn"), str, "agent.name")
    agent_cls = agents.AGENTS.get(agent_name).Config
    agent_raw["name"] = agent_name
    raw["agent"] = agent_raw
    top = build(Config, {k: v for k, v in raw.items() if k not in ("agent", "encoder", "replay")})
    cfg = dataclasses.replace(
        top,
        agent=build(agent_cls, agent_raw, "agent.", owner=f" for agent {agent_name!r}"),
        encoder=build(encoders.encoder_config_class(), raw.get("encoder"), "encoder."),
        replay=build(replay.replay_config_class(), move_replay_keys(raw.get("replay"), saved=saved), "replay."),
    )
    if cfg.encoder.name != "auto":
        encoders.ENCODERS.get(cfg.encoder.name)
    replay.REPLAYS.get(cfg.replay.kind)
    validate(cfg, check_machine=check_machine)
    return cfg


def load(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """A preset or YAML file (None: the defaults) with `key=value` overrides, built and checked."""
    raw = read_yaml(path) if path else {}
    return from_dict(merge(raw, parse_overrides(overrides or [])))


def from_yaml(text: str, *, check_machine: bool = False) -> Config:
    """A saved config (checkpoint, sweep task): values checked, the device only when asked."""
    if not isinstance(text, str):
        raise UserError(f"the saved config is a {type(text).__name__}, not YAML text; "
                        "use a checkpoint written by train.py")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"the saved config is not plain YAML ({str(err).splitlines()[0][:80]}); "
                        "use a checkpoint written by train.py") from None
    if data is not None and not isinstance(data, dict):
        raise UserError(f"the saved config is a YAML {type(data).__name__}, not a mapping of keys; "
                        "use a checkpoint written by train.py")
    return from_dict(data or {}, check_machine=check_machine, saved=True)
