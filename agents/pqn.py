"""PQN: parallelised Q-learning (Gallici et al. 2024, "Simplifying Deep Temporal Difference Learning").

No replay and no target network: a batch of envs steps together, each rollout of `rollout_steps`
vector steps becomes Q(lambda) targets computed once with the current network, and the network
trains on them for a few epochs of minibatches. LayerNorm in the encoder (`layer_norm: true` of
`nips_cnn`) keeps the bootstrapping stable without a target network; `target_every_rollouts`
bootstraps from an older copy of the network instead, for runs with few envs.

The training on one rollout is spread over the vector steps of the next (`learn_while_stepping`,
which the loop calls between sending actions and receiving the step), so envs that step on their
own threads or processes run while the network trains. The targets were computed before that, as
in PQN, so acting one rollout behind changes no target.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from howsure.agents.base import (
    Agent,
    AgentConfig,
    AnnealedEpsilon,
    epsilon_greedy,
    gradient_step,
    linear_schedule,
    state_dict_mismatch,
)
from howsure.agents.heads import QHead, QNetwork
from howsure.encoders import make_encoder
from howsure.replay.batch import Batch
from torch import nn

from howsure.errors import UserError


@dataclass(frozen=True)
class PQNConfig(AgentConfig):
    name: str = "pqn"
    gamma: float = 0.99  # discount per agent step
    q_lambda: float = 0.65  # Q(lambda) trace: 0 is one-step Q-learning, 1 the Monte Carlo return
    lr: float = 2.5e-4
    # agent steps of linear decay from lr to lr_end (PQN anneals to 0); 0: constant; time_limit: over
    # the run's wall-clock cap (time_limit_minutes), so the rate reaches lr_end as the cap ends
    # training on a fast CPU and on a slow one alike
    lr_decay_steps: int | Literal["time_limit"] = 0
    lr_end: float = 0.0
    optimizer: Literal["adam", "radam"] = "radam"  # RAdam as in PQN
    optimizer_eps: float = 1e-8
    rollout_steps: int = 32  # vector steps per rollout (each holds env.num_envs transitions)
    epochs: int = 2  # passes over each rollout
    minibatches: int = 8  # minibatches per epoch
    max_grad_norm: float = 10.0  # 0 disables gradient clipping
    # 0: targets bootstrap from the current network (PQN); n: from a copy refreshed every n rollouts
    # (1 is the same as 0: the targets of a rollout are computed once, before it is learned from)
    target_every_rollouts: int = 0
    dueling: bool = False
    head_hidden: int = 0  # units of a hidden layer inside the head; 0: linear head
    epsilon_start: float = 1.0
    epsilon_end: float = 0.01
    epsilon_decay_steps: int = 250_000  # agent steps (summed over envs) of linear annealing


def q_lambda_returns(rewards: torch.Tensor, discounts: torch.Tensor, ends: torch.Tensor,
                     next_max_q: torch.Tensor, lam: float) -> torch.Tensor:
    """Peng's Q(lambda) targets backwards over a rollout, all (T, N):

        G_t = r_t + d_t * ((1 - lam) * max_a Q(s_{t+1}, a) + lam * G_{t+1})

    with G_{t+1} replaced by max_a Q(s_{t+1}, a) at the rollout's last step and where an episode
    ended at t (its next transition belongs to another episode). d_t is gamma, or 0 where s_{t+1}
    is terminal; a truncated episode keeps gamma and bootstraps from its last observation."""
    out = torch.empty_like(rewards)
    for t in reversed(range(rewards.shape[0])):
        boot = next_max_q[t]
        if t + 1 < rewards.shape[0]:
            mixed = (1.0 - lam) * next_max_q[t] + lam * out[t + 1]
            boot = torch.where(ends[t], next_max_q[t], mixed)
        out[t] = rewards[t] + discounts[t] * boot
    return out


class PQNAgent(AnnealedEpsilon, Agent):
    Config = PQNConfig
    uses_replay = False

    def __init__(self, cfg: PQNConfig, spec, **kwargs):
        super().__init__(cfg, spec, **kwargs)
        if not 0.0 <= cfg.q_lambda <= 1.0:
            raise UserError(f"agent.q_lambda must be in [0, 1], got {cfg.q_lambda}")
        if min(cfg.rollout_steps, cfg.epochs, cfg.minibatches) < 1:
            raise UserError("agent.rollout_steps, agent.epochs and agent.minibatches must be at least 1")
        encoder = make_encoder(self.encoder_cfg, spec)
        self.q = QNetwork(encoder, QHead(encoder.out_features, spec.n_actions, cfg.dueling, cfg.head_hidden))
        self.q.to(self.device)
        self._params = list(self.q.parameters())
        self.q_target = copy.deepcopy(self.q).requires_grad_(False) if cfg.target_every_rollouts > 0 else None
        self.rollouts = 0  # rollouts turned into targets so far
        opt = torch.optim.RAdam if cfg.optimizer == "radam" else torch.optim.Adam
        self.optimizer = opt(self._params, lr=cfg.lr, eps=cfg.optimizer_eps, foreach=True)
        self.updates = 0
        self.steps_seen = 0  # transitions recorded (agent steps), for the learning-rate schedule
        self._rollout: list[Batch] = []
        self._train: dict[str, torch.Tensor] = {}
        self._queue: list[torch.Tensor] = []  # minibatch indices into _train still to learn from

    # -- acting ---------------------------------------------------------------------------
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.q(torch.as_tensor(obs, device=self.device)).argmax(dim=1).cpu().numpy()

    def act(self, obs: np.ndarray, step: int, epsilon: float | None = None) -> np.ndarray:
        eps = self.epsilon(step) if epsilon is None else epsilon
        return epsilon_greedy(self.rng, self.spec.n_actions, eps, self.greedy, obs)

    # -- learning -------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """Record one vector step; a full rollout becomes targets and a queue of minibatches."""
        self._rollout.append(batch)
        self.steps_seen += len(batch)
        if len(self._rollout) < self.cfg.rollout_steps:
            return {}
        metrics = self._learn(len(self._queue))  # normally empty: the last rollout was spread out
        self._prepare(self._rollout)
        self._rollout = []
        return metrics

    def learn_while_stepping(self) -> dict[str, float]:
        """Some of the queued minibatches, paced to finish as the next rollout fills."""
        if not self._queue:
            return {}
        steps_left = max(1, self.cfg.rollout_steps - len(self._rollout))
        return self._learn(math.ceil(len(self._queue) / steps_left))

    def _prepare(self, rollout: list[Batch]) -> None:
        stack = lambda name: torch.stack([getattr(b, name) for b in rollout]).to(self.device)  # noqa: E731
        obs, next_obs = stack("obs"), stack("next_obs")
        rewards, discounts = stack("rewards"), stack("discounts")
        ends = stack("ends") if rollout[0].ends is not None else discounts == 0
        if self.q_target is not None and self.rollouts % self.cfg.target_every_rollouts == 0:
            self.q_target.load_state_dict(self.q.state_dict())
        self.rollouts += 1
        bootstrap = self.q if self.q_target is None else self.q_target
        with torch.no_grad():
            flat = next_obs.flatten(0, 1)
            next_max = torch.cat([bootstrap(flat[i:i + 1024]).max(dim=1).values for i in range(0, len(flat), 1024)])
        returns = q_lambda_returns(rewards, discounts, ends, next_max.view(rewards.shape), self.cfg.q_lambda)
        self._train = {"obs": obs.flatten(0, 1), "actions": stack("actions").flatten(), "returns": returns.flatten()}
        total = len(self._train["returns"])
        size = math.ceil(total / self.cfg.minibatches)
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        self._queue = [idx for _ in range(self.cfg.epochs)
                       for idx in torch.randperm(total, generator=gen).split(size)]

    def learning_rate(self) -> float:
        c = self.cfg
        if c.lr_decay_steps == "time_limit":
            return c.lr + min(self.time_used, 1.0) * (c.lr_end - c.lr)
        return linear_schedule(c.lr, c.lr_end, c.lr_decay_steps, self.steps_seen) if c.lr_decay_steps > 0 else c.lr

    def _learn(self, n: int) -> dict[str, float]:
        losses, qs = [], []
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        for _ in range(min(n, len(self._queue))):
            idx = self._queue.pop(0)
            q = self.q(self._train["obs"][idx]).gather(1, self._train["actions"][idx].unsqueeze(1)).squeeze(1)
            loss = 0.5 * (q - self._train["returns"][idx]).pow(2).mean()
            gradient_step(self.optimizer, self._params, loss, self.cfg.max_grad_norm)
            self.updates += 1
            losses.append(loss.item())
            qs.append(q.mean().item())
        if not losses:
            return {}
        return {"losses/td_loss": float(np.mean(losses)), "values/q_mean": float(np.mean(qs)),
                "charts/learning_rate": lr}

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        # A half-filled rollout is not saved: a resumed run starts a fresh one.
        state = {**super().state_dict(), "q": self.q.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "updates": self.updates, "steps_seen": self.steps_seen, "rollouts": self.rollouts}
        if self.q_target is not None:
            state["q_target"] = self.q_target.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.q.load_state_dict(state["q"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.q_target is not None:  # a checkpoint from before the switch: refreshed from the online net
                self.q_target.load_state_dict(state.get("q_target", state["q"]))
        except (RuntimeError, KeyError, ValueError) as err:
            raise UserError(f"checkpoint weights do not fit this network ({state_dict_mismatch(err)}); "
                            "keep the encoder/agent settings the checkpoint was trained with") from None
        self.updates = int(state["updates"])
        self.steps_seen = int(state.get("steps_seen", 0))
        self.rollouts = int(state.get("rollouts", 0))
        super().load_state_dict(state)

    def modules(self) -> dict[str, nn.Module]:
        return {"q": self.q}
