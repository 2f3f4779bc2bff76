"""Tabular Q-learning with the correct Bellman update (Watkins 1989):

    Q[s,a] += lr * (r + gamma * max_a' Q[s',a'] - Q[s,a])     (no bootstrap from a terminal s')

The widely copied lecture snippet `Q[s,a] += r + lr*(gamma*max - Q[s,a])` adds the whole reward
on every visit, so its values grow without bound; tests/test_tabular.py checks we converge to
the value-iteration fixed point instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from howsure.agents.base import Agent, AgentConfig, AnnealedEpsilon
from howsure.replay.batch import Batch

from howsure.errors import UserError


@dataclass(frozen=True)
class TabularQConfig(AgentConfig):
    name: str = "tabular_q"
    gamma: float = 0.95  # discount per step
    lr: float = 0.1  # step size of the Bellman update
    epsilon_start: float = 1.0
    epsilon_end: float = 0.1
    epsilon_decay_steps: int = 10_000  # agent steps of linear annealing
    initial_q: float = 0.0  # optimistic values (>0) are another way to explore


def bellman_update(q: np.ndarray, s: np.ndarray, a: np.ndarray, r: np.ndarray, s2: np.ndarray,
                   discounts: np.ndarray, lr: float) -> np.ndarray:
    """Apply the update for a batch of transitions in order; returns the TD errors.

    discounts = gamma for a non-terminal s2 and 0 for a terminal one.
    """
    errors = np.empty(len(s))
    for i in range(len(s)):
        td = r[i] + discounts[i] * q[s2[i]].max() - q[s[i], a[i]]
        q[s[i], a[i]] += lr * td
        errors[i] = td
    return errors


class TabularQAgent(AnnealedEpsilon, Agent):
    Config = TabularQConfig
    uses_replay = False

    def __init__(self, cfg: TabularQConfig, spec, **kwargs):
        super().__init__(cfg, spec, **kwargs)
        if not spec.discrete_obs:
            raise UserError(
                f"agent tabular_q needs a discrete observation space, and {spec.env_id!r} has "
                f"observations of shape {spec.obs_shape}; use agent.name=dqn for it"
            )
        self.q = np.full((spec.n_obs, spec.n_actions), cfg.initial_q, dtype=np.float64)

    def greedy(self, states: np.ndarray) -> np.ndarray:
        """argmax with ties broken uniformly at random (an all-zero row is a coin flip)."""
        rows = self.q[np.asarray(states, dtype=np.int64)]
        best = rows == rows.max(axis=1, keepdims=True)
        noise = self.rng.random(rows.shape)
        return np.argmax(np.where(best, noise, -1.0), axis=1)

    def act(self, obs: np.ndarray, step: int, epsilon: float | None = None) -> np.ndarray:
        eps = self.epsilon(step) if epsilon is None else epsilon
        actions = self.greedy(obs)
        explore = self.rng.random(len(actions)) < eps
        actions[explore] = self.rng.integers(0, self.spec.n_actions, size=int(explore.sum()))
        return actions

    def update(self, batch: Batch) -> dict[str, float]:
        s = batch.obs.numpy().astype(np.int64)
        a = batch.actions.numpy()
        errors = bellman_update(self.q, s, a, batch.rewards.numpy(), batch.next_obs.numpy().astype(np.int64),
                                batch.discounts.numpy(), self.cfg.lr)
        return {"losses/td_loss": float(np.mean(errors**2)), "values/q_mean": float(self.q[s, a].mean())}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "q_table": torch.from_numpy(self.q.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        table = state.get("q_table")
        if table is None or tuple(table.shape) != self.q.shape:
            raise UserError(f"checkpoint Q-table has shape {None if table is None else tuple(table.shape)}, "
                            f"this env needs {self.q.shape}; evaluate it on the env it was trained on")
        self.q[...] = table.numpy()
        super().load_state_dict(state)
