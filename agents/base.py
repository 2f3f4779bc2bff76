"""What every agent exposes to the loop. Agents never step envs, write files or log."""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ContextManager

import numpy as np
import torch
from howsure.replay.batch import Batch
from torch import nn


def linear_schedule(start: float, end: float, duration_steps: int, step: int) -> float:
    """Linear annealing from start to end over duration_steps, then constant."""
    if duration_steps <= 0:
        return end
    if step >= duration_steps:
        return end
    return start + max(step, 0) / duration_steps * (end - start)


def epsilon_greedy(rng: np.random.Generator, n_actions: int, eps: float, greedy, obs: np.ndarray,
                   always_greedy: bool = False) -> np.ndarray:
    """Each env explores with probability eps; greedy(obs) is skipped when every env explores,
    unless always_greedy (a recurrent state must see every observation)."""
    n = len(obs)
    explore = rng.random(n) < eps
    if explore.all() and not always_greedy:
        return rng.integers(0, n_actions, size=n)
    actions = greedy(obs)
    if explore.any():
        actions[explore] = rng.integers(0, n_actions, size=int(explore.sum()))
    return actions


def state_dict_mismatch(err: Exception) -> str:
    """The first informative line of torch's load_state_dict error, shortened: its first line is
    only "Error(s) in loading state_dict for QNetwork:", the size mismatch or missing key follows."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        lines = lines[1:]
    text = lines[0] if lines else type(err).__name__
    text = re.sub(r"torch\.Size\((\[[^\]]*\])\)", r"\1", text)
    return text if len(text) <= 200 else text[:197] + "..."


def gradient_step(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], loss: torch.Tensor,
                  max_grad_norm: float) -> None:
    """Backward pass and one optimizer step on `loss`, the gradients' global norm clipped to
    max_grad_norm first where it is positive (the deep agents' shared step)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        nn.utils.clip_grad_norm_(params, max_grad_norm, foreach=True)
    optimizer.step()


class AnnealedEpsilon:
    """Mixin for agents whose config has epsilon_start, epsilon_end and epsilon_decay_steps:
    epsilon annealed linearly over the decay steps, logged as charts/epsilon."""

    def epsilon(self, step: int) -> float:
        c = self.cfg
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, step)

    def schedule_metrics(self, step: int) -> dict[str, float]:
        return {"charts/epsilon": self.epsilon(step)}


@dataclass(frozen=True)
class AgentConfig:
    """What every agent's config holds (each agent's Config extends it). The loop reads the
    learner-side view of a step from here: reward clipping and life loss."""
    name: str = ""
    gamma: float = 0.99  # discount per agent step
    clip_rewards: bool = False  # learner sees sign(r); logged returns stay raw
    terminal_on_life_loss: bool = False  # Atari: a lost life ends bootstrapping (not the episode)


class Agent:
    """Base class. Subclasses set `Config` (a frozen dataclass) and implement act/update."""

    Config: type
    uses_replay: bool = True  # False: update() gets the latest vector step instead of a sample
    reports_uncertainty: bool = False  # True: last_epistemic_std() after every act (bayes_dqn)

    @property
    def needs_sequences(self) -> bool:
        """True for agents with a recurrent encoder: they learn from sequence windows."""
        return False

    def __init__(self, cfg: Any, spec: Any, *, encoder_cfg: Any = None, device: str = "cpu",
                 seed: int = 0):
        self.cfg, self.spec, self.encoder_cfg, self.device = cfg, spec, encoder_cfg, device
        self.rng = np.random.default_rng(seed)
        self.time_used = 0.0  # see note_time_used

    # -- acting ---------------------------------------------------------------------------
    def act(self, obs: np.ndarray, step: int, epsilon: float | None = None) -> np.ndarray:
        """Actions for a batch of observations. epsilon=None: the training schedule at `step`."""
        raise NotImplementedError

    def begin_episode(self, env_indices: np.ndarray) -> None:
        """Called when envs start a new episode (recurrent state, per-episode masks)."""

    def reseed(self, seed: int) -> None:
        """Draw acting randomness (epsilon) from `seed`, replacing the state a checkpoint restored."""
        self.rng = np.random.default_rng(seed)

    def evaluating(self) -> ContextManager[None]:
        """Context for evaluation inside training: recurrent agents act there with a memory of
        their own, so the training envs' recurrent states survive it."""
        return nullcontext()

    def replay_state(self) -> np.ndarray | None:
        """Recurrent agents: the state (n_envs, S) floats each env acted from in the last
        training act(), which the loop hands to replay (R2D2's stored state); others: None."""
        return None

    # -- learning -------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """One learning step; returns scalars keyed by TensorBoard tag."""
        raise NotImplementedError

    def learn_while_stepping(self) -> dict[str, float]:
        """Agents without replay: training work the loop runs between sending actions to the envs
        and receiving the step, so envs on other threads or processes step meanwhile (PQN)."""
        return {}

    def note_time_used(self, fraction: float) -> None:
        """The share of the run's wall-clock cap spent so far (resumes included), told by the loop
        after every chunk when time_limit_minutes is set; for schedules over time (PQN's rate)."""
        self.time_used = fraction

    def schedule_metrics(self, step: int) -> dict[str, float]:
        """Scalars that depend on the step alone (epsilon), logged by the loop."""
        return {}

    def act_metrics(self) -> dict[str, float]:
        """Scalars gathered while acting since the last call (e.g. uncertainty), then reset."""
        return {}

    def last_epistemic_std(self) -> np.ndarray:
        """Agents with reports_uncertainty: per row of the last act(), the std of the chosen
        action's Q over the agent's posterior."""
        raise NotImplementedError(f"{type(self).__name__} reports no epistemic uncertainty")

    def epistemic_std_scale(self) -> float:
        """Agents with reports_uncertainty: the largest epistemic std seen so far."""
        raise NotImplementedError(f"{type(self).__name__} reports no epistemic uncertainty")

    def q_spread(self, obs: np.ndarray, draws: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and std of Q over the agent's posterior (draws, heads) for a batch of observations,
        each (N, actions); None for agents without an epistemic spread. Leaves acting state alone.
        `draws`: how many posterior samples, for agents that sample (default: the agent's own setting)."""
        return None

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def modules(self) -> dict[str, Any]:
        """Named torch modules whose weights are exported (safetensors)."""
        return {}
