"""What a deep agent needs to use a recurrent encoder (encoders/lstm.py), kept in one place so
dqn, bayes_dqn and later agents share it.

Acting (DRQN, arXiv:1507.06527): `RecurrentMemory` carries one state row per env, zeroed at
episode starts; training and evaluation keep separate memories so an evaluation in the middle
of training leaves the training envs' states untouched.
Learning (R2D2, Kapturowski et al. 2019): `unroll` starts each window from the state the
replay stored (or zeros), unrolls the burn-in prefix without gradient, then the window itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import nn


def is_recurrent(net: nn.Module) -> bool:
    """True for a network whose encoder carries a state (net.encoder.recurrent)."""
    return bool(getattr(getattr(net, "encoder", None), "recurrent", False))


class RecurrentMemory:
    """Per-env recurrent state while acting: (n_envs, state_size) float tensors."""

    def __init__(self, encoder: nn.Module, device: torch.device | str):
        self.encoder, self.device = encoder, device
        self._states: dict[str, torch.Tensor | None] = {"train": None, "eval": None}
        self.mode = "train"
        self.acted_from: np.ndarray | None = None  # training state each env acted from, last step

    def get(self, n: int) -> torch.Tensor:
        state = self._states[self.mode]
        if state is None or state.shape[0] != n:  # first call, or a different number of envs
            state = self.encoder.initial_state(n, self.device)
            self._states[self.mode] = state
        return state

    def set(self, state: torch.Tensor) -> None:
        self._states[self.mode] = state

    def reset(self, env_indices: np.ndarray) -> None:
        """Episode starts: zero those envs' rows in the memory now in use."""
        state, rows = self._states[self.mode], np.asarray(env_indices, dtype=np.int64)
        if state is not None and rows.size and rows.max() >= state.shape[0]:
            self._states[self.mode] = None  # more envs than rows: every row starts afresh at get()
        elif state is not None:
            state = state.clone()
            state[torch.as_tensor(rows, dtype=torch.long)] = 0.0
            self._states[self.mode] = state

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Act with a separate evaluation memory; training's is kept as it was."""
        previous, self.mode = self.mode, "eval"
        self._states["eval"] = None
        try:
            yield
        finally:
            self.mode = previous

    def step(self, obs: torch.Tensor) -> torch.Tensor:
        """One acting step of the encoder: features (n_envs, F); advances the memory."""
        state = self.get(len(obs))
        if self.mode == "train":
            self.acted_from = state.cpu().numpy().astype(np.float32, copy=True)
        features, state = self.encoder(obs.unsqueeze(1), state)
        self.set(state)
        return features[:, 0]


def unroll(encoder: nn.Module, obs: torch.Tensor, state: torch.Tensor | None, burn_in: int,
           burn_in_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Encoder features over the positions of sequence windows after the burn-in.

    obs: (B, burn_in + T, *obs_shape); state: (B, state_size) at the window's first position, or
    None for zeros (DRQN). The burn-in prefix only moves the state, without gradient (R2D2);
    burn_in_mask (B, burn_in) marks real steps, and left-padded ones (before the episode start)
    leave the state as it is. Returns features (B, T, F); apply the agent's head to them.
    """
    if state is None:
        state = encoder.initial_state(obs.shape[0], obs.device)
    if burn_in > 0:
        with torch.no_grad():
            b = obs.shape[0]
            real = (burn_in_mask.sum(1) if burn_in_mask is not None
                    else torch.full((b,), burn_in, device=obs.device)).long()
            # real steps sit at the right end of the prefix: move them to the front, one call
            idx = (torch.arange(burn_in, device=obs.device)[None] + (burn_in - real)[:, None]).clamp(max=burn_in - 1)
            prefix = obs[torch.arange(b, device=obs.device)[:, None], idx]
            _, state = encoder(prefix, state, lengths=real)
    features, _ = encoder(obs[:, burn_in:], state)
    return features
