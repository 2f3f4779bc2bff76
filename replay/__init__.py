"""Replay: storage and sampling of experience. Knows nothing about agents."""

from __future__ import annotations

from dataclasses import dataclass

from howsure.replay.atari import AtariReplay
from howsure.replay.batch import Batch
from howsure.replay.sequence import SequenceReplay
from howsure.replay.sequence_batch import SequenceBatch
from howsure.replay.uniform import UniformReplay

from howsure.registry import Registry

REPLAYS: Registry = Registry("replay kind")
REPLAYS.register("uniform")(UniformReplay)
REPLAYS.register("atari")(AtariReplay)  # frame-deduplicating: each 84x84 frame stored once
REPLAYS.register("sequence")(SequenceReplay)


@dataclass(frozen=True)
class ReplayConfig:
    kind: str = "uniform"  # a name from replay.REPLAYS
    capacity_steps: int = 100_000  # transitions kept (agent steps, summed over envs); atari kind: frames
    # uniform and atari kinds:
    n_step: int = 1  # agent steps summed into one return before bootstrapping (Rainbow: 3)
    prioritized: bool = False  # proportional prioritized replay (Schaul et al., arXiv:1511.05952)
    priority_alpha: float = 0.6  # priority = (|TD error| + priority_eps)^alpha; 0 is uniform
    priority_beta_start: float = 0.4  # importance-sampling exponent at step 0, annealed linearly to 1
    beta_anneal_steps: int = 1_000_000  # agent steps until beta reaches 1 (the paper: the whole run)
    priority_eps: float = 1e-6  # keeps transitions with zero TD error sampleable
    # atari kind only:
    compress: bool = False  # lz4-compress each stored frame (~25x smaller on Pong; slower sampling)
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
