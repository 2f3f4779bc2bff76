"""The sampled minibatch: a small frozen dataclass of tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Batch:
    obs: torch.Tensor  # (B, *obs_shape), stored dtype (uint8 frames stay uint8)
    actions: torch.Tensor  # (B,) int64
    rewards: torch.Tensor  # (B,) float32, learner rewards (clipped if the agent asks), n-step sums
    next_obs: torch.Tensor  # (B, *obs_shape)
    discounts: torch.Tensor  # (B,) float32: gamma^n, or 0 where bootstrapping ends (terminal)
    weights: torch.Tensor | None = None  # (B,) importance weights (prioritized replay)
    indices: np.ndarray | None = None  # buffer slots, for priority updates
    ends: torch.Tensor | None = None  # (B,) bool: the episode ended here (terminated or truncated); online agents
    data_size: int = 0  # transitions the replay held when the batch was drawn (set by the Learner); 0: unknown

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        if torch.device(device).type == "cpu":
            return self
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.obs), move(self.actions), move(self.rewards), move(self.next_obs),
                     move(self.discounts), move(self.weights), self.indices, move(self.ends), self.data_size)

    @staticmethod
    def from_numpy(obs, actions, rewards, next_obs, terminated, gamma: float, ends=None) -> "Batch":
        """A batch from one vector-env step (for agents that learn online, like tabular Q)."""
        return Batch(
            obs=torch.as_tensor(np.asarray(obs)),
            actions=torch.as_tensor(np.asarray(actions), dtype=torch.int64),
            rewards=torch.as_tensor(np.asarray(rewards), dtype=torch.float32),
            next_obs=torch.as_tensor(np.asarray(next_obs)),
            discounts=torch.as_tensor(gamma * (1.0 - np.asarray(terminated, dtype=np.float32))),
            ends=None if ends is None else torch.as_tensor(np.asarray(ends, dtype=bool)),
        )
