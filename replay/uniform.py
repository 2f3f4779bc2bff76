"""A preallocated ring buffer of transitions; observations keep their dtype (uint8 stays uint8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from howsure.errors import UserError
from replay.batch import Batch
from replay.memory import check_fits


class UniformReplay:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, gamma: float,
                 seed: int = 0):
        if capacity <= 0:
            raise UserError(f"replay.capacity_steps must be positive, got {capacity}")
        self.capacity, self.gamma = capacity, gamma
        obs_dtype = np.dtype(obs_dtype)
        obs_bytes = int(np.prod(obs_shape, dtype=np.int64)) * obs_dtype.itemsize
        check_fits(capacity * (2 * obs_bytes + 8 + 4 + 1), f"a replay of {capacity:,} transitions")
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.bool_)
        self.pos, self.size = 0, 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.obs, self.next_obs, self.actions, self.rewards, self.terminated))

    def add(self, obs, actions, rewards, next_obs, terminated, dones=None) -> None:
        """Add one vector-env step (a row per env). `dones` is unused: transitions stand alone."""
        n = len(actions)
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.actions[idx] = actions
        self.rewards[idx] = rewards
        self.terminated[idx] = terminated
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        idx = self.rng.integers(0, self.size, size=batch_size)
        return Batch(
            obs=torch.from_numpy(self.obs[idx]),
            actions=torch.from_numpy(self.actions[idx]),
            rewards=torch.from_numpy(self.rewards[idx]),
            next_obs=torch.from_numpy(self.next_obs[idx]),
            discounts=torch.from_numpy(self.gamma * (1.0 - self.terminated[idx].astype(np.float32))),
            indices=idx,
        )

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Uniform sampling ignores priorities."""

    # Plain .npy arrays plus a JSON header: loaded with allow_pickle=False, never a pickle.
    _ARRAYS = ("obs", "next_obs", "actions", "rewards", "terminated")

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in self._ARRAYS:
            tmp = directory / f"{name}.tmp.npy"
            np.save(tmp, getattr(self, name)[: self.size])
            tmp.replace(directory / f"{name}.npy")
        header = {"kind": "uniform", "capacity": self.capacity, "pos": self.pos, "size": self.size,
                  "rng": self.rng.bit_generator.state}
        tmp = directory / "header.json.tmp"
        tmp.write_text(json.dumps(header))
        tmp.replace(directory / "header.json")

    def load(self, directory: str | Path) -> None:
        directory = Path(directory)
        try:
            header = json.loads((directory / "header.json").read_text())
            arrays = {n: np.load(directory / f"{n}.npy", allow_pickle=False) for n in self._ARRAYS}
        except (OSError, ValueError) as err:
            raise UserError(f"replay in {str(directory)!r} is missing or corrupt ({err}); "
                            "resume without it by deleting that folder") from None
        if header.get("kind") != "uniform" or header["capacity"] != self.capacity:
            raise UserError(f"replay in {str(directory)!r} was saved with another kind or capacity "
                            f"({header.get('kind')}, {header.get('capacity')}); keep replay settings on resume")
        size = header["size"]
        for name, arr in arrays.items():
            target = getattr(self, name)
            if arr.shape[1:] != target.shape[1:] or len(arr) != size:
                raise UserError(f"replay array {name!r} in {str(directory)!r} has the wrong shape")
            target[:size] = arr
        self.pos, self.size = header["pos"], size
        self.rng.bit_generator.state = header["rng"]
