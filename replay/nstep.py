"""n-step returns, accumulated as steps arrive (one pending window per env).

The stored return of the transition taken at step t is R = sum_{i<k} gamma^i r_{t+i}, and the
learner bootstraps with discount gamma^k from the state k steps later (Sutton 1988; Rainbow,
arXiv:1710.02298, uses n=3). The window closes early, with k < n, where bootstrapping ends
(terminated: discount 0) or the episode ends without a terminal (truncated: discount gamma^k,
bootstrapping from the final observation).
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple


class Closed(NamedTuple):
    payload: Any  # whatever the buffer attached to the first step (a slot, an obs)
    ret: float  # discounted reward sum over k steps
    discount: float  # gamma^k, or 0 where bootstrapping ends
    k: int  # agent steps covered; the bootstrap state is k steps after the first


class NStepAccumulator:
    def __init__(self, n_envs: int, n_step: int, gamma: float):
        if n_step < 1:
            raise ValueError("n_step must be >= 1")
        self.n_step, self.gamma = n_step, gamma
        self.pending: list[deque] = [deque() for _ in range(n_envs)]  # [payload, ret, k]

    def step(self, env: int, payload: Any, reward: float, terminated: bool, done: bool) -> list[Closed]:
        """Record env's step; return the windows this step closed (oldest first)."""
        queue = self.pending[env]
        queue.append([payload, 0.0, 0])
        reward = float(reward)
        for item in queue:
            item[1] += self.gamma ** item[2] * reward
            item[2] += 1
        if terminated or done:
            out = [Closed(p, r, 0.0 if terminated else self.gamma ** k, k) for p, r, k in queue]
            queue.clear()
            return out
        if queue[0][2] == self.n_step:
            p, r, k = queue.popleft()
            return [Closed(p, r, self.gamma ** k, k)]
        return []

    def flush(self, env: int) -> list[Closed]:
        """Close env's open windows as truncated (the episode was cut, e.g. by a resume)."""
        out = [Closed(p, r, self.gamma ** k, k) for p, r, k in self.pending[env]]
        self.pending[env].clear()
        return out

    def state(self) -> list[list[list]]:
        return [[list(item) for item in q] for q in self.pending]

    def restore(self, state: list[list[list]]) -> None:
        self.pending = [deque([list(item) for item in q]) for q in state]
