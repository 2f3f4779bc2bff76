"""Bootstrap masks as a pure function of the replay slot: which ensemble members train on which
transitions (Bootstrapped DQN, Osband et al. arXiv:1602.04621). Shared by boot_dqn's heads and
bayes_dqn's fixed dropout masks."""

from __future__ import annotations

import numpy as np

_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def bootstrap_masks(indices: np.ndarray, num_heads: int, prob: float, seed: int) -> np.ndarray:
    """(B, K) float32 masks, each entry Bernoulli(prob), a fixed function of (replay slot, head, seed).

    The replay knows nothing about agents, so the mask is not stored with the transition; it is
    recomputed from the slot index on every sample, hence a transition keeps its mask for life.
    A slot reused after the ring buffer wraps gives its new transition the old mask: still an
    independent Bernoulli draw with respect to the data, as the bootstrap needs.
    """
    slots = np.asarray(indices, dtype=np.uint64).reshape(-1, 1)
    heads = np.arange(num_heads, dtype=np.uint64).reshape(1, -1)
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed % 2**63) ^ _splitmix64(slots * np.uint64(num_heads) + heads))
    uniform = (key >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (uniform < prob).astype(np.float32)
