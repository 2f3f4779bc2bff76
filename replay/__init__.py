"""Replay: storage and sampling of experience. Knows nothing about agents."""

from __future__ import annotations

from dataclasses import dataclass, field

from howsure.replay.atari import AtariReplay
from howsure.replay.batch import Batch
from howsure.replay.prioritized import PrioritySettings
from howsure.replay.sequence import SequenceReplay
from howsure.replay.sequence_batch import SequenceBatch
from howsure.replay.uniform import UniformReplay

from howsure.registry import Registry, component_section

REPLAYS: Registry = Registry("replay kind")
REPLAYS.register("uniform")(UniformReplay)
REPLAYS.register("atari")(AtariReplay)  # frame-deduplicating: each 84x84 frame stored once
REPLAYS.register("sequence")(SequenceReplay)


@dataclass(frozen=True)
class SharedReplaySettings:
    """The replay section's settings that several kinds read; each kind's own are its sub-section."""

    kind: str = "uniform"  # a name from replay.REPLAYS
    capacity_steps: int = 100_000  # transitions kept (agent steps, summed over envs); atari kind: frames
    # uniform and atari kinds:
    n_step: int = 1  # agent steps summed into one return before bootstrapping (Rainbow: 3)
    prioritized: bool = False  # proportional prioritized replay (Schaul et al., arXiv:1511.05952)
    priority: PrioritySettings = field(default_factory=PrioritySettings)  # read when prioritized


def replay_config_class() -> type:
    """The whole `replay` section: the shared settings plus one sub-section per kind that has
    settings of its own (a buffer class's `Settings`), e.g. replay.sequence.burn_in_steps."""
    members = {n: REPLAYS.get(n).Settings for n in REPLAYS if REPLAYS.get(n).Settings is not None}
    return component_section("ReplayConfig", members, "kind", "uniform", shared=SharedReplaySettings)


ReplayConfig = replay_config_class()


def make_replay(cfg: ReplayConfig, spec, gamma: float, seed: int):
    """The buffer named by cfg.kind, sized for the env's observations."""
    cls = REPLAYS.get(cfg.kind)
    if hasattr(cls, "from_config"):  # buffers with knobs of their own read them from cfg
        return cls.from_config(cfg, spec, gamma, seed)
    return cls(cfg.capacity_steps, spec.obs_shape, spec.obs_dtype, gamma=gamma, seed=seed)


__all__ = ["Batch", "PrioritySettings", "REPLAYS", "ReplayConfig", "SequenceBatch", "SequenceReplay", "UniformReplay",
           "make_replay", "replay_config_class"]
