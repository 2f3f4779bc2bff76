"""Sequence replay for recurrent agents: windows of consecutive steps of one episode.

DRQN (arXiv:1507.06527) trains an LSTM on sampled windows of one episode; R2D2 (Kapturowski et
al., ICLR 2019) stores the recurrent state seen while acting, starts each window from it and
unrolls a burn-in prefix without gradient. Each env has its own ring of rows, so an episode is
a run of consecutive rows; an episode's final observation gets a row of its own (no
transition), so one observation array holds every successor. Windows stop at the episode's
end (padded and masked) and the burn-in is cut at its start, so no window mixes two episodes.

Knobs (the replay.sequence sub-section): length_steps (truncate), burn_in_steps, stride_steps
(windows start every k steps of an episode: R2D2's overlapping windows use k = length / 2) and
stored_state (false: every window starts from zeros, DRQN's "bootstrapped random updates").
The per-step state is an opaque float array handed over by the loop; replay knows nothing about
the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from howsure.replay.files import LEGACY_HEADER, ChunkedArrays, FolderWriter, load_array, read_header
from howsure.replay.memory import check_fits
from howsure.replay.sequence_batch import SequenceBatch

from howsure.errors import UserError


@dataclass(frozen=True)
class SequenceSettings:
    """The `replay.sequence` sub-section (DRQN arXiv:1507.06527, R2D2)."""

    length_steps: int = 16  # agent steps per training window (truncate)
    burn_in_steps: int = 0  # agent steps before each window that only move the state, no gradient
    stride_steps: int = 1  # windows start every this many agent steps of an episode
    stored_state: bool = True  # start windows from the state stored while acting; false: zeros


class SequenceReplay:
    sequences = True  # sample() returns SequenceBatch windows
    Settings = SequenceSettings


    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, gamma: float,
                 seed: int = 0, *, sequence_steps: int = 16, burn_in_steps: int = 0,
                 stride_steps: int = 1, stored_state: bool = True):
        if capacity <= 0:
            raise UserError(f"replay.capacity_steps must be positive, got {capacity}")
        if sequence_steps <= 0 or burn_in_steps < 0 or stride_steps <= 0:
            raise UserError("replay.sequence.length_steps and replay.sequence.stride_steps must be "
                            "positive and replay.sequence.burn_in_steps at least 0")
        self.capacity, self.gamma = capacity, gamma
        self.length, self.burn_in, self.stride, self.stored_state = (
            sequence_steps, burn_in_steps, stride_steps, stored_state)
        self.obs_shape, self.obs_dtype = tuple(obs_shape), np.dtype(obs_dtype)
        obs_bytes = int(np.prod(obs_shape, dtype=np.int64)) * self.obs_dtype.itemsize
        check_fits(capacity * (obs_bytes + 8 + 4 + 1 + 1 + 8), f"a sequence replay of {capacity:,} steps")
        self.rng = np.random.default_rng(seed)
        self.n_envs = 0  # rows are allocated at the first add, once the number of envs is known
        self.steps_added = 0  # agent steps ever added (one per env per add)
        self.states: np.ndarray | None = None

    @classmethod
    def from_config(cls, cfg, spec, gamma: float, seed: int) -> "SequenceReplay":
        s = cfg.sequence
        return cls(cfg.capacity_steps, spec.obs_shape, spec.obs_dtype, gamma, seed,
                   sequence_steps=s.length_steps, burn_in_steps=s.burn_in_steps,
                   stride_steps=s.stride_steps, stored_state=s.stored_state)

    def _allocate(self, n_envs: int) -> None:
        rows = self.capacity // n_envs
        if rows < self.length + self.burn_in + 2:
            raise UserError(f"replay.capacity_steps={self.capacity} leaves {rows} steps per env, fewer "
                            "than one window; raise it or shorten replay.sequence.length_steps")
        self.n_envs, self.rows = n_envs, rows
        self.obs = np.zeros((n_envs, rows, *self.obs_shape), dtype=self.obs_dtype)
        self.actions = np.zeros((n_envs, rows), dtype=np.int64)
        self.rewards = np.zeros((n_envs, rows), dtype=np.float32)
        self.terminated = np.zeros((n_envs, rows), dtype=np.bool_)
        self.transition = np.zeros((n_envs, rows), dtype=np.bool_)  # False: an episode's final obs
        self.ep_start = np.full((n_envs, rows), -1, dtype=np.int64)  # absolute row of the episode's first
        self.count = np.zeros(n_envs, dtype=np.int64)  # rows ever written, per env
        self.new_episode = np.ones(n_envs, dtype=np.bool_)
        self.cur_start = np.zeros(n_envs, dtype=np.int64)
        # saved in chunks of rows (about 64 MB of observations); a save rewrites the chunks written since
        obs_bytes = int(np.prod(self.obs_shape, dtype=np.int64)) * self.obs_dtype.itemsize
        self.chunks = ChunkedArrays(max(256, (64 << 20) // max(1, n_envs * obs_bytes)), axis=1)

    def __len__(self) -> int:
        return 0 if not self.n_envs else int(np.minimum(self.count, self.rows).sum())

    @property
    def nbytes(self) -> int:
        if not self.n_envs:
            return 0
        arrays = [self.obs, self.actions, self.rewards, self.terminated, self.transition, self.ep_start]
        return sum(a.nbytes for a in arrays) + (0 if self.states is None else self.states.nbytes)

    # ----------------------------------------------------------------------------- storing

    def _write(self, envs: np.ndarray, obs, actions, rewards, terminated, transition: bool,
               states) -> None:
        slot = self.count[envs] % self.rows
        self.chunks.mark(slot)
        self.obs[envs, slot] = obs
        self.actions[envs, slot] = actions
        self.rewards[envs, slot] = rewards
        self.terminated[envs, slot] = terminated
        self.transition[envs, slot] = transition
        self.ep_start[envs, slot] = self.cur_start[envs]
        if self.states is not None:
            self.states[envs, slot] = 0.0 if states is None else states
        self.count[envs] += 1

    def add(self, obs, actions, rewards, next_obs, terminated, dones=None, states=None) -> None:
        """One vector-env step (a row per env). states: (n_envs, S) floats each env acted from."""
        n = len(actions)
        if not self.n_envs:
            self._allocate(n)
        if n != self.n_envs:
            raise UserError(f"sequence replay was filled by {self.n_envs} envs and now gets {n}; "
                            "keep env.num_envs fixed within a run")
        if states is not None and self.states is None:
            states = np.asarray(states, dtype=np.float32)
            self.states = np.zeros((n, self.rows, states.shape[1]), dtype=np.float32)
        dones = np.asarray(terminated if dones is None else dones, dtype=np.bool_)
        self.steps_added += n
        envs = np.arange(n)
        self.cur_start = np.where(self.new_episode, self.count, self.cur_start)
        self._write(envs, obs, actions, rewards, terminated, True, states)
        ended = np.flatnonzero(dones)
        if ended.size:
            self._write(ended, np.asarray(next_obs)[ended], 0, 0.0, False, False, None)
        self.new_episode = dones.copy()

    # ----------------------------------------------------------------------------- sampling

    def _window_starts(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(env, absolute row) of transitions that have a stored successor, on the stride grid."""
        envs_out, rows_out = [], []
        need, tries = batch_size, 0
        size = np.minimum(self.count, self.rows)
        while need > 0:
            m = 4 * need * self.stride
            env = self.rng.integers(0, self.n_envs, size=m)
            row = self.count[env] - size[env] + (self.rng.random(m) * size[env]).astype(np.int64)
            slot = row % self.rows
            ok = (self.transition[env, slot] & (row + 1 < self.count[env])
                  & ((row - self.ep_start[env, slot]) % self.stride == 0))
            env, row = env[ok][:need], row[ok][:need]
            envs_out.append(env)
            rows_out.append(row)
            need -= len(env)
            tries += 1
            if tries > 1000:
                raise UserError("sequence replay holds no window to sample yet; raise "
                                "agent.learning_starts_steps")
        return np.concatenate(envs_out), np.concatenate(rows_out)

    def sample(self, batch_size: int) -> SequenceBatch:
        env, start = self._window_starts(batch_size)
        b, length, burn = len(env), self.length, self.burn_in
        rows = start[:, None] + np.arange(-burn, length + 1)[None, :]  # (B, burn + T + 1) absolute
        slot = rows % self.rows
        count = self.count[env][:, None]
        episode = self.ep_start[env, start % self.rows][:, None]
        real = (rows >= count - self.rows) & (rows < count) & (self.ep_start[env[:, None], slot] == episode)
        steps = slice(burn, burn + length)
        step_ok = real[:, steps] & self.transition[env[:, None], slot[:, steps]] & (rows[:, steps] + 1 < count)
        mask = np.cumprod(step_ok, axis=1).astype(np.bool_)  # stops at the episode's end
        burn_mask = real[:, :burn]
        obs_ok = np.concatenate([burn_mask, np.ones((b, 1), np.bool_), mask], axis=1)
        obs = self.obs[env[:, None], slot]
        obs[~obs_ok] = 0
        take = lambda arr: np.where(mask, arr[env[:, None], slot[:, steps]], 0)  # noqa: E731
        states = None
        if self.stored_state and self.states is not None:
            first = start - burn_mask.sum(axis=1)  # the first real row of the window
            states = torch.from_numpy(self.states[env, first % self.rows])
        return SequenceBatch(
            obs=torch.from_numpy(obs),
            actions=torch.from_numpy(take(self.actions).astype(np.int64)),
            rewards=torch.from_numpy(take(self.rewards).astype(np.float32)),
            discounts=torch.from_numpy((self.gamma * (1.0 - take(self.terminated))).astype(np.float32)),
            mask=torch.from_numpy(mask),
            burn_in_mask=torch.from_numpy(burn_mask),
            states=states,
            indices=np.stack([env, start], axis=1),
        )

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Windows are sampled uniformly; priorities are ignored."""

    # ----------------------------------------------------------------------------- save / load
    # Plain .npy arrays plus a JSON header (replay/files.py): loaded with allow_pickle=False, never a pickle.
    _ROWS = ("obs", "actions", "rewards", "terminated", "transition", "ep_start")  # (n_envs, rows, ...)
    _PER_ENV = ("count", "new_episode", "cur_start")  # (n_envs,)
    _ARRAYS = _ROWS + _PER_ENV

    def _row_arrays(self) -> dict[str, np.ndarray]:
        arrays = {n: getattr(self, n) for n in self._ROWS}
        if self.states is not None:
            arrays["states"] = self.states
        return arrays

    def save(self, directory: str | Path) -> str:
        """Write a generation (only the row chunks changed since the last save); returns its header's name."""
        writer = FolderWriter(directory)
        files: dict[str, str] = {}
        if self.n_envs:
            files = self.chunks.save(writer, self._row_arrays(), self.rows)
            files.update({n: writer.write(n, getattr(self, n)) for n in self._PER_ENV})
        header = {"kind": "sequence", "capacity": self.capacity, "n_envs": self.n_envs,
                  "states": self.states is not None, "rng": self.rng.bit_generator.state,
                  "state_size": 0 if self.states is None else int(self.states.shape[2]),
                  "steps_added": self.steps_added}
        if self.n_envs:
            header["chunk_rows"] = self.chunks.chunk
        return writer.commit(header, files)

    def load(self, directory: str | Path, header_name: str = LEGACY_HEADER) -> None:
        directory = Path(directory)
        header = read_header(directory, header_name)
        if header.get("kind") != "sequence" or header.get("capacity") != self.capacity:
            raise UserError(f"replay in {str(directory)!r} was saved with another kind or capacity "
                            f"({header.get('kind')}, {header.get('capacity')}); keep replay settings on resume")
        try:
            n_envs = int(header["n_envs"])
            rng = header["rng"]
            if n_envs:
                self._allocate(n_envs)
                if header.get("states"):
                    size = int(header.get("state_size") or 0)
                    if "files" not in header:  # legacy: the state size comes from the file
                        size = load_array(directory, "states.npy").shape[-1]
                    self.states = np.zeros((n_envs, self.rows, size), dtype=np.float32)
                if "files" in header:
                    files = header["files"]
                    self.chunks.chunk = max(1, int(header.get("chunk_rows", self.chunks.chunk)))
                    self.chunks.load(directory, files, self._row_arrays(), self.rows)
                    per_env = {n: load_array(directory, files[n]) for n in self._PER_ENV}
                else:  # a legacy folder: one <name>.npy per array
                    for name, target in self._row_arrays().items():
                        arr = load_array(directory, f"{name}.npy")
                        if arr.shape != target.shape:
                            raise ValueError(f"array {name!r} has the wrong shape {arr.shape}")
                        target[:] = arr
                    per_env = {n: load_array(directory, f"{n}.npy") for n in self._PER_ENV}
                for name, arr in per_env.items():
                    if arr.shape != getattr(self, name).shape:
                        raise ValueError(f"array {name!r} has the wrong shape {arr.shape}")
                    setattr(self, name, arr.astype(getattr(self, name).dtype))
                if np.any(self.count < 0):
                    raise ValueError("negative row counts")
            self.rng.bit_generator.state = rng
            self.steps_added = int(header.get("steps_added", 0))
        except (KeyError, TypeError, ValueError) as err:
            self.n_envs, self.states = 0, None
            raise UserError(f"replay in {str(directory)!r} is corrupt ({str(err)[:100]}); "
                            "resume without the replay by deleting that folder") from None
        if not self.n_envs:
            return
        # A resumed run starts fresh episodes: each env's newest step never got its successor,
        # so its observation becomes the end of that (truncated) episode.
        newest = (self.count - 1) % self.rows
        has = self.count > 0
        self.transition[np.flatnonzero(has), newest[has]] = False
        self.chunks.mark(newest[has])  # changed here: the next save must write these rows
        self.new_episode[:] = True
