"""The sampled minibatch of sequence windows (DRQN / R2D2): a small frozen dataclass of tensors.

Window layout, per row: `burn_in` positions of burn-in (left-padded where the episode started
later), then T transitions, then the successor observation of the last one:
  obs[:, :burn_in]                 burn-in observations (state only, no gradient, no loss)
  obs[:, burn_in + t], t < T       observation of transition t
  obs[:, burn_in + t + 1]          its successor (the final observation where the episode ended)
Positions past an episode's end are zero and masked out; no window holds two episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass(frozen=True)
class SequenceBatch:
    obs: torch.Tensor  # (B, burn_in + T + 1, *obs_shape), stored dtype
    actions: torch.Tensor  # (B, T) int64
    rewards: torch.Tensor  # (B, T) float32, learner rewards
    discounts: torch.Tensor  # (B, T) float32: gamma, or 0 where bootstrapping ends (terminal)
    mask: torch.Tensor  # (B, T) bool: real transitions (False past the episode's end)
    burn_in_mask: torch.Tensor  # (B, burn_in) bool: real burn-in steps (False before the episode)
    states: torch.Tensor | None = None  # (B, state_size) stored state at position 0, None: zeros
    weights: torch.Tensor | None = None  # (B,) importance weights (unused: uniform windows)
    indices: np.ndarray | None = None  # (B, 2) [env, absolute row] of each window's first transition
    data_size: int = 0  # agent steps the replay held when the batch was drawn (set by the Learner); 0: unknown

    @property
    def burn_in(self) -> int:
        return int(self.burn_in_mask.shape[1])

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def to(self, device: torch.device | str) -> "SequenceBatch":
        if torch.device(device).type == "cpu":
            return self
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[name] = value.to(device, non_blocking=True)
        return SequenceBatch(**moved)
