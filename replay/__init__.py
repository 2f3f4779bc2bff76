"""Replay: storage and sampling of experience. Knows nothing about agents."""

from __future__ import annotations

from dataclasses import dataclass

from howsure.registry import Registry
from replay.batch import Batch
from replay.uniform import UniformReplay

REPLAYS: Registry = Registry("replay kind")
REPLAYS.register("uniform")(UniformReplay)


@dataclass(frozen=True)
class ReplayConfig:
    kind: str = "uniform"  # a name from replay.REPLAYS
    capacity_steps: int = 100_000  # transitions kept (agent steps, summed over envs)


def replay_config_class() -> type:
    return ReplayConfig


def make_replay(cfg: ReplayConfig, spec, gamma: float, seed: int):
    """The buffer named by cfg.kind, sized for the env's observations."""
    cls = REPLAYS.get(cfg.kind)
    return cls(cfg.capacity_steps, spec.obs_shape, spec.obs_dtype, gamma=gamma, seed=seed)


__all__ = ["Batch", "REPLAYS", "ReplayConfig", "UniformReplay", "make_replay", "replay_config_class"]
