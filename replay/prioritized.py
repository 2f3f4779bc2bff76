"""Proportional prioritized sampling (Schaul et al. 2016, arXiv:1511.05952), for any buffer.

A slot's priority is p_i = (|delta_i| + eps)^alpha; it is drawn with probability
P(i) = p_i / sum_k p_k. A new transition gets the largest priority seen so far, so it is replayed
at least once soon. The importance weight w_i = (N * P(i))^-beta / max_j w_j corrects the bias
of non-uniform sampling; the max is over the whole buffer, which reduces to
w_i = (p_i / min_j p_j)^-beta. beta grows linearly from beta_start to 1 over beta_anneal_steps
agent steps (counted by the buffer as transitions added).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from howsure.replay.sum_tree import SumTree


@dataclass(frozen=True)
class PrioritySettings:
    alpha: float = 0.6  # 0: uniform; the paper's proportional variant used 0.6
    beta_start: float = 0.4  # importance-sampling exponent at step 0
    beta_anneal_steps: int = 1_000_000  # agent steps until beta reaches 1
    eps: float = 1e-6  # added to |TD error| so no transition becomes unsampleable


class PrioritySampler:
    """Priorities of `capacity` slots; slots that are not sampleable hold priority 0."""

    def __init__(self, capacity: int, settings: PrioritySettings):
        self.settings = settings
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # of |delta| + eps, before the alpha power

    @property
    def nbytes(self) -> int:
        return self.tree.nbytes

    def beta(self, step: int) -> float:
        s = self.settings
        if s.beta_anneal_steps <= 0:
            return 1.0
        return s.beta_start + (1.0 - s.beta_start) * min(1.0, max(step, 0) / s.beta_anneal_steps)

    def add_new(self, slots: np.ndarray) -> None:
        """Slots that just became sampleable get the maximal priority."""
        self.tree.set(slots, self.max_priority ** self.settings.alpha)

    def remove(self, slots: np.ndarray) -> None:
        self.tree.set(slots, 0.0)

    def update(self, slots: np.ndarray, td_abs: np.ndarray) -> None:
        """New priorities from |TD error| of sampled slots."""
        raw = np.abs(np.asarray(td_abs, dtype=np.float64)).ravel() + self.settings.eps
        self.max_priority = max(self.max_priority, float(raw.max(initial=0.0)))
        self.tree.set(slots, raw ** self.settings.alpha)

    def sample(self, batch_size: int, rng: np.random.Generator, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Slots and their importance weights (float32, max over the buffer = 1)."""
        slots = self.tree.sample(batch_size, rng)
        p = self.tree.get(slots)
        weights = (p / self.tree.min) ** (-self.beta(step))
        return slots, weights.astype(np.float32)

    def state(self) -> dict:
        return {"max_priority": self.max_priority}

    def leaves(self, n: int) -> np.ndarray:
        return self.tree.sums[self.tree.size: self.tree.size + n].copy()

    def restore(self, state: dict, leaves: np.ndarray) -> None:
        self.max_priority = float(state["max_priority"])
        self.tree.sums[:] = 0.0
        self.tree.mins[:] = np.inf
        self.tree.set(np.arange(len(leaves)), leaves)


def priority_settings(cfg) -> PrioritySettings | None:
    """The prioritized-replay settings of a ReplayConfig (its `priority` sub-section), or None
    for uniform sampling."""
    return cfg.priority if cfg.prioritized else None
