"""Replay: storage and sampling of experience. Knows nothing about agents."""

from __future__ import annotations

from dataclasses import dataclass

from howsure.registry import Registry
from replay.batch import Batch
from replay.sequence import SequenceReplay
from replay.sequence_batch import SequenceBatch
from replay.uniform import UniformReplay

REPLAYS: Registry = Registry("replay kind")
REPLAYS.register("uniform")(UniformReplay)
REPLAYS.register("sequence")(SequenceReplay)


@dataclass(frozen=True)
class ReplayConfig:
    kind: str = "uniform"  # a name from replay.REPLAYS
    capacity_steps: int = 100_000  # transitions kept (agent steps, summed over envs)
    # sequence replay (recurrent encoders; DRQN arXiv:1507.06527, R2D2):
    sequence_length_steps: int = 16  # agent steps per training window (truncate)
    burn_in_steps: int = 0  # agent steps before each window that only move the state, no gradient
    sequence_stride_steps: int = 1  # windows start every this many agent steps of an episode
    stored_state: bool = True  # start windows from the state stored while acting; false: zeros


def replay_config_class() -> type:
    return ReplayConfig


def make_replay(cfg: ReplayConfig, spec, gamma: float, seed: int):
    """The buffer named by cfg.kind, sized for the env's observations."""
    cls = REPLAYS.get(cfg.kind)
    if hasattr(cls, "from_config"):  # buffers with knobs of their own read them from cfg
        return cls.from_config(cfg, spec, gamma, seed)
    return cls(cfg.capacity_steps, spec.obs_shape, spec.obs_dtype, gamma=gamma, seed=seed)


__all__ = ["Batch", "REPLAYS", "ReplayConfig", "SequenceBatch", "SequenceReplay", "UniformReplay",
           "make_replay", "replay_config_class"]
