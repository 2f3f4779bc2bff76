"""A preallocated ring buffer of transitions; observations keep their dtype (uint8 stays uint8).

Options shared with the Atari replay: n-step returns (replay.n_step, see replay/nstep.py; a
transition is stored once its window closes, so windows still open when the replay is saved
are not kept) and proportional prioritized sampling (replay.prioritized, replay/prioritized.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from howsure.replay.batch import Batch
from howsure.replay.files import LEGACY_HEADER, ChunkedArrays, FolderWriter, load_array, read_header
from howsure.replay.memory import check_fits
from howsure.replay.nstep import NStepAccumulator
from howsure.replay.prioritized import PrioritySampler, PrioritySettings, priority_settings

from howsure.errors import UserError


class UniformReplay:
    sequences = False  # samples single transitions; recurrent agents need replay.kind=sequence
    Settings = None  # no settings of its own: n_step and prioritized are shared with the atari kind

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, gamma: float,
                 seed: int = 0, *, n_step: int = 1, priority: PrioritySettings | None = None,
                 n_actions: int | None = None):
        if capacity <= 0:
            raise UserError(f"replay.capacity_steps must be positive, got {capacity}")
        if n_step < 1:
            raise UserError(f"replay.n_step must be at least 1, got {n_step}")
        self.capacity, self.gamma, self.n_step = capacity, gamma, n_step
        obs_dtype = np.dtype(obs_dtype)
        obs_bytes = int(np.prod(obs_shape, dtype=np.int64)) * obs_dtype.itemsize
        tree_bytes = 32 * (1 << max(0, int(capacity - 1).bit_length())) if priority is not None else 0
        check_fits(capacity * (2 * obs_bytes + 8 + 4 + 4) + tree_bytes, f"a replay of {capacity:,} transitions")
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)  # gamma^k, 0 where bootstrapping ends
        self.pos, self.size = 0, 0
        self.rng = np.random.default_rng(seed)
        self.priority = PrioritySampler(capacity, priority) if priority is not None else None
        self.steps_added = 0  # agent steps ever added: the clock of beta's annealing
        self.nstep: NStepAccumulator | None = None  # made at the first add (needs the env count)
        self.n_actions = n_actions
        # saved in chunks of about 64 MB of observations; a save rewrites the chunks written since
        self.chunks = ChunkedArrays(max(1024, (64 << 20) // max(1, 2 * obs_bytes)))

    @classmethod
    def from_config(cls, cfg, spec, gamma: float, seed: int) -> "UniformReplay":
        return cls(cfg.capacity_steps, spec.obs_shape, spec.obs_dtype, gamma=gamma, seed=seed,
                   n_step=cfg.n_step, priority=priority_settings(cfg), n_actions=spec.n_actions)

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        arrays = (self.obs, self.next_obs, self.actions, self.rewards, self.discounts)
        return sum(a.nbytes for a in arrays) + (self.priority.nbytes if self.priority else 0)

    def add(self, obs, actions, rewards, next_obs, terminated, dones=None) -> None:
        """Add one vector-env step (a row per env). `dones` (episode ended) closes n-step windows."""
        self.steps_added += len(actions)
        if self.n_step == 1:
            self._write(obs, actions, rewards, next_obs,
                        self.gamma * (1.0 - np.asarray(terminated, dtype=np.float32)))
            return
        if self.nstep is None:
            self.nstep = NStepAccumulator(len(actions), self.n_step, self.gamma)
        dones = terminated if dones is None else dones
        rows = []
        for e in range(len(actions)):
            for c in self.nstep.step(e, (np.array(obs[e]), actions[e]), rewards[e], bool(terminated[e]),
                                     bool(dones[e])):
                rows.append((c.payload[0], c.payload[1], c.ret, next_obs[e], c.discount))
        if rows:
            o, a, r, nxt, d = zip(*rows)
            self._write(np.stack(o), np.array(a), np.array(r, dtype=np.float32), np.stack(nxt),
                        np.array(d, dtype=np.float32))

    def _write(self, obs, actions, rewards, next_obs, discounts) -> None:
        n = len(actions)
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.actions[idx] = actions
        self.rewards[idx] = rewards
        self.discounts[idx] = discounts
        self.chunks.mark(idx)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        if self.priority is not None:
            self.priority.add_new(idx)

    def sample(self, batch_size: int) -> Batch:
        weights = None
        if self.priority is not None:
            idx, weights = self.priority.sample(batch_size, self.rng, self.steps_added)
        else:
            idx = self.rng.integers(0, self.size, size=batch_size)
        return Batch(
            obs=torch.from_numpy(self.obs[idx]),
            actions=torch.from_numpy(self.actions[idx]),
            rewards=torch.from_numpy(self.rewards[idx]),
            next_obs=torch.from_numpy(self.next_obs[idx]),
            discounts=torch.from_numpy(self.discounts[idx]),
            weights=None if weights is None else torch.from_numpy(weights),
            indices=idx,
        )

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """New |TD error| of sampled transitions (ignored without replay.prioritized)."""
        if self.priority is not None:
            self.priority.update(np.asarray(indices), np.asarray(priorities).reshape(-1))

    # Plain .npy arrays plus a JSON header (replay/files.py): loaded with allow_pickle=False, never a pickle.
    _ARRAYS = ("obs", "next_obs", "actions", "rewards", "discounts")

    def save(self, directory: str | Path) -> str:
        """Write a generation (only the chunks changed since the last save); returns its header's name."""
        writer = FolderWriter(directory)
        files = self.chunks.save(writer, {n: getattr(self, n) for n in self._ARRAYS}, self.size)
        header = {"kind": "uniform", "capacity": self.capacity, "pos": self.pos, "size": self.size,
                  "rng": self.rng.bit_generator.state, "n_step": self.n_step,
                  "steps_added": self.steps_added, "prioritized": self.priority is not None,
                  "chunk_rows": self.chunks.chunk}
        if self.priority is not None:
            files["priorities"] = writer.write("priorities", self.priority.leaves(self.capacity))
            header["priority"] = self.priority.state()
        return writer.commit(header, files)

    def load(self, directory: str | Path, header_name: str = LEGACY_HEADER) -> None:
        directory = Path(directory)
        header = read_header(directory, header_name)
        saved = (header.get("kind"), header.get("capacity"), header.get("n_step", 1), header.get("prioritized", False))
        if saved != ("uniform", self.capacity, self.n_step, self.priority is not None):
            raise UserError(f"replay in {str(directory)!r} was saved with another kind, capacity, n_step or "
                            f"prioritized setting {saved}; keep replay settings on resume")
        try:
            size, pos = int(header["size"]), int(header["pos"])
            if not (0 <= size <= self.capacity and 0 <= pos < self.capacity):
                raise ValueError(f"size {size} or pos {pos} outside the capacity")
            targets = {n: getattr(self, n) for n in self._ARRAYS}
            if "files" in header:
                self.chunks.chunk = max(1, int(header.get("chunk_rows", self.chunks.chunk)))
                self.chunks.load(directory, header["files"], targets, size)
            else:  # a legacy folder: one <name>.npy per array
                for name, target in targets.items():
                    arr = load_array(directory, f"{name}.npy")
                    if arr.shape != (size, *target.shape[1:]):
                        raise ValueError(f"array {name!r} has the wrong shape {arr.shape}")
                    target[:size] = arr
            limit = self.n_actions if self.n_actions is not None else np.iinfo(np.int64).max
            if not np.all((self.actions[:size] >= 0) & (self.actions[:size] < limit)):
                raise ValueError("actions out of range")
            self.rng.bit_generator.state = header["rng"]
            steps_added = int(header.get("steps_added", size))
            if self.priority is not None:
                leaves = load_array(directory, header.get("files", {}).get("priorities", "priorities.npy"))
                if leaves.shape != (self.capacity,):
                    raise ValueError("priorities have the wrong shape")
                self.priority.restore(header["priority"], leaves)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"replay in {str(directory)!r} is corrupt ({str(err)[:100]}); "
                            "resume without the replay by deleting that folder") from None
        self.pos, self.size, self.steps_added = pos, size, steps_added
        self.nstep = None  # the loop starts fresh episodes after a resume
