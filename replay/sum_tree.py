"""A sum tree and a min tree over a fixed number of leaves, vectorised with numpy.

Prioritized replay (Schaul et al. 2016, arXiv:1511.05952, appendix B.2.1) samples leaf i with
probability p_i / sum_j p_j in O(log N); the min tree gives min_j p_j for the importance-weight
normalisation. Parents are recomputed from their children on every update (never by adding
deltas), so the totals never drift however long a run lasts.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Leaves hold non-negative priorities; a zero leaf is never sampled."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.depth = max(0, int(capacity - 1).bit_length())
        self.size = 1 << self.depth  # leaves, a power of two
        self.sums = np.zeros(2 * self.size, dtype=np.float64)
        # min tree: empty leaves hold +inf so they never count as the minimum
        self.mins = np.full(2 * self.size, np.inf, dtype=np.float64)
        # memoryviews index to plain floats: the per-step updates of one or two leaves walk the
        # tree in Python, several times faster than numpy calls on tiny arrays
        self._sums_view, self._mins_view = memoryview(self.sums), memoryview(self.mins)

    @property
    def nbytes(self) -> int:
        return self.sums.nbytes + self.mins.nbytes

    @property
    def total(self) -> float:
        return float(self.sums[1])

    @property
    def min(self) -> float:
        """The smallest positive leaf (inf when all are zero)."""
        return float(self.mins[1])

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.sums[self.size + np.asarray(indices, dtype=np.int64)]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves (duplicates allowed: the last value wins) and refresh their ancestors."""
        nodes = self.size + np.asarray(indices, dtype=np.int64).ravel()
        if nodes.size == 0:
            return
        if nodes.size <= 4:
            values = np.broadcast_to(np.asarray(values, dtype=np.float64), nodes.shape)
            for node, value in zip(nodes.tolist(), values.tolist()):
                self._set_one(node, value)
            return
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), nodes.shape)
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("priorities must be finite and non-negative")
        self.sums[nodes] = values
        self.mins[nodes] = np.where(values > 0, values, np.inf)
        for _ in range(self.depth):
            # duplicate parents are assigned the same value twice: harmless, no np.unique needed
            nodes = nodes >> 1
            left = nodes << 1
            self.sums[nodes] = self.sums[left] + self.sums[left + 1]
            self.mins[nodes] = np.minimum(self.mins[left], self.mins[left + 1])

    def _set_one(self, node: int, value: float) -> None:
        if not (0.0 <= value < float("inf")):
            raise ValueError("priorities must be finite and non-negative")
        sums, mins = self._sums_view, self._mins_view
        sums[node] = value
        mins[node] = value if value > 0 else float("inf")
        for _ in range(self.depth):
            node >>= 1
            left = node << 1
            sums[node] = sums[left] + sums[left + 1]
            a, b = mins[left], mins[left + 1]
            mins[node] = a if a < b else b

    def find(self, targets: np.ndarray) -> np.ndarray:
        """Leaves whose prefix-sum interval holds each target in [0, total)."""
        targets = np.array(targets, dtype=np.float64)
        nodes = np.ones(targets.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = nodes << 1
            left_sum = self.sums[left]
            right = targets >= left_sum
            targets -= np.where(right, left_sum, 0.0)
            nodes = left + right
        return nodes - self.size

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified proportional sampling: one draw from each of batch_size equal slices of the total."""
        total = self.total
        if total <= 0:
            raise ValueError("cannot sample from an empty sum tree")
        targets = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        leaves = self.find(np.minimum(targets, np.nextafter(total, 0)))
        # float rounding can land a target just past the last positive leaf; draw those again
        for _ in range(32):
            bad = self.sums[self.size + leaves] <= 0
            if not bad.any():
                break
            leaves[bad] = self.find(rng.random(int(bad.sum())) * total)
        return leaves
