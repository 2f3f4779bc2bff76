"""Bootstrapped DQN (Osband et al. 2016, arXiv:1602.04621) with randomized prior functions
(Osband, Aslanides & Cassirer 2018, arXiv:1806.03335).

K Q-heads, on one shared encoder (the 2016 paper) or on one encoder each (bsuite's baseline).
Each head k learns only from the transitions its bootstrap mask keeps (Bernoulli p), and adds
beta times a fixed, untrained prior network of the same shape, so heads disagree where data is
missing. Each env acts greedily on one head drawn at the start of every episode (deep, temporally
consistent exploration); evaluation acts on the mean over heads. The TD target and loss are
agents.dqn's, applied to every head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from howsure.agents.bootstrap import bootstrap_masks
from howsure.agents.dqn import DQNAgent, DQNConfig, td_loss, td_target
from howsure.agents.heads import QHead
from howsure.agents.priors import init_prior
from howsure.encoders import make_encoder
from howsure.replay.batch import Batch
from torch import nn


@dataclass(frozen=True)
class BootDQNConfig(DQNConfig):
    name: str = "boot_dqn"
    num_heads: int = 10  # K bootstrap heads
    mask_prob: float = 0.5  # p: chance that a head trains on a given transition (1.0: no bootstrap)
    prior_scale: float = 3.0  # beta: weight of the fixed random prior network; 0 disables it
    shared_encoder: bool = True  # False: one encoder per head (bsuite's ensemble of K networks)
    epsilon_start: float = 0.0  # exploration comes from the heads; epsilon stays as an optional floor
    epsilon_end: float = 0.0


# ------------------------------------------------------------------ the network


class LinearHeads(nn.Module):
    """K independent linear Q heads computed as one matmul: features -> (B, K, n_actions)."""

    def __init__(self, in_features: int, num_heads: int, n_actions: int):
        super().__init__()
        self.num_heads, self.n_actions = num_heads, n_actions
        self.linear = nn.Linear(in_features, num_heads * n_actions)  # rows of head k: k*A .. k*A+A-1

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features).view(-1, self.num_heads, self.n_actions)


class Ensemble(nn.Module):
    """K heads on one shared encoder or on K encoders: observations -> Q (B, K, n_actions)."""

    def __init__(self, encoders: list[nn.Module], heads: list[nn.Module] | LinearHeads):
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.heads = heads if isinstance(heads, LinearHeads) else nn.ModuleList(heads)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if isinstance(self.heads, LinearHeads):
            return self.heads(self.encoders[0](obs))
        if len(self.encoders) == 1:
            features = self.encoders[0](obs)
            return torch.stack([head(features) for head in self.heads], dim=1)
        return torch.stack([head(enc(obs)) for enc, head in zip(self.encoders, self.heads)], dim=1)


class EnsembleWithPrior(nn.Module):
    """Q_k(s) = f_k(s) + beta * p_k(s), with p a frozen, randomly initialised copy of f's shape."""

    def __init__(self, trained: Ensemble, prior: Ensemble | None, scale: float):
        super().__init__()
        self.trained, self.prior, self.scale = trained, prior, scale
        if prior is not None:
            prior.requires_grad_(False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        q = self.trained(obs)
        if self.prior is None:
            return q
        with torch.no_grad():
            prior = self.prior(obs)
        return q + self.scale * prior


class BootDQNAgent(DQNAgent):
    Config = BootDQNConfig

    def __init__(self, cfg: BootDQNConfig, spec, **kwargs):
        super().__init__(cfg, spec, **kwargs)  # builds trained + prior nets from the seeded torch stream
        self.mask_seed = int(self.rng.integers(2**62))
        self.active = np.zeros(0, dtype=np.int64)  # head in use, per training env
        self._std_sum, self._std_count = 0.0, 0

    def _ensemble(self) -> Ensemble:
        c = self.cfg
        n_enc = 1 if c.shared_encoder else c.num_heads
        encoders = [make_encoder(self.encoder_cfg, self.spec) for _ in range(n_enc)]
        if c.shared_encoder and not c.dueling and not c.head_hidden:  # the common case, in one matmul
            return Ensemble(encoders, LinearHeads(encoders[0].out_features, c.num_heads, self.spec.n_actions))
        heads = [QHead(encoders[0].out_features, self.spec.n_actions, c.dueling, c.head_hidden)
                 for _ in range(c.num_heads)]
        return Ensemble(encoders, heads)

    def build_network(self) -> nn.Module:
        c = self.cfg
        trained = self._ensemble()
        prior = self._ensemble() if c.prior_scale > 0 else None
        if prior is not None:
            init_prior(prior)
        return EnsembleWithPrior(trained, prior, c.prior_scale)

    # -- acting ---------------------------------------------------------------------------
    def begin_episode(self, env_indices: np.ndarray) -> None:
        """A new head for every env that starts an episode (Osband 2016, Algorithm 1)."""
        env_indices = np.asarray(env_indices, dtype=np.int64)
        if len(env_indices) and env_indices.max() >= len(self.active):
            grown = np.zeros(env_indices.max() + 1, dtype=np.int64)
            grown[: len(self.active)] = self.active
            self.active = grown
        self.active[env_indices] = self.rng.integers(0, self.cfg.num_heads, size=len(env_indices))

    def act(self, obs: np.ndarray, step: int, epsilon: float | None = None) -> np.ndarray:
        n = len(obs)
        if len(self.active) < n:
            self.begin_episode(np.arange(len(self.active), n))
        with torch.no_grad():
            q = self.q(torch.as_tensor(obs, device=self.device)).cpu()  # (n, K, A)
        if epsilon is None:  # training: each env follows its own head
            q_used = q[torch.arange(n), torch.as_tensor(self.active[:n])]
            eps = self.epsilon(step)
        else:  # evaluation: the ensemble mean
            q_used, eps = q.mean(dim=1), epsilon
        actions = q_used.argmax(dim=1).numpy()
        chosen_std = q.std(dim=1).gather(1, torch.as_tensor(actions).unsqueeze(1))
        self._std_sum += float(chosen_std.sum())
        self._std_count += n
        explore = self.rng.random(n) < eps
        if explore.any():
            actions[explore] = self.rng.integers(0, self.spec.n_actions, size=int(explore.sum()))
        return actions

    def q_spread(self, obs: np.ndarray, draws: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        with torch.no_grad():  # every head once: nothing is sampled
            q = self.q(torch.as_tensor(obs, device=self.device))  # (n, K, A)
        return q.mean(dim=1).cpu().numpy(), q.std(dim=1, unbiased=False).cpu().numpy()

    def act_metrics(self) -> dict[str, float]:
        """Disagreement between heads on the chosen action's value, averaged over acting steps."""
        if self._std_count == 0:
            return {}
        out = {"uncertainty/epistemic_std": self._std_sum / self._std_count}
        self._std_sum, self._std_count = 0.0, 0
        return out

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = self.q(torch.as_tensor(obs, device=self.device))
        return q.mean(dim=1).argmax(dim=1).cpu().numpy()

    # -- learning -------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        batch = batch.to(self.device)
        c = self.cfg
        b, k = len(batch), c.num_heads
        q = self.q(batch.obs)  # (B, K, A)
        q_taken = q.gather(2, batch.actions.view(b, 1, 1).expand(b, k, 1)).squeeze(2)
        with torch.no_grad():
            next_target = self.target(batch.next_obs).reshape(b * k, -1)
            next_online = self.q(batch.next_obs).reshape(b * k, -1) if c.double_dqn else None
            target = td_target(batch.rewards.repeat_interleave(k), batch.discounts.repeat_interleave(k),
                               next_target, next_online)
        if batch.indices is not None:
            masks = bootstrap_masks(batch.indices, k, c.mask_prob, self.mask_seed)
        else:
            masks = (self.rng.random((b, k)) < c.mask_prob).astype(np.float32)
        weights = torch.as_tensor(masks, device=q.device)
        if batch.weights is not None:
            weights = weights * batch.weights.unsqueeze(1)
        loss, _ = td_loss(q_taken.reshape(-1), target, c.loss, weights.reshape(-1))
        self.apply_gradients(loss)
        return {"losses/td_loss": loss.item(), "values/q_mean": q_taken.mean().item(),
                "losses/mask_fraction": float(masks.mean())}

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "mask_seed": self.mask_seed, "active": self.active.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.mask_seed = int(state["mask_seed"])
        self.active = np.asarray(state["active"], dtype=np.int64)
