"""Frame-deduplicating Atari replay: each frame is stored once, stacks are rebuilt when sampled.

A stacked observation (4, 84, 84) shares 3 of its 4 frames with the next one, so storing stacks
costs 4x (8x with separate next_obs) what storing frames does: 28,224 vs 7,056 bytes per step.

Layout. Each env writes its own stream of frames into its own ring of capacity // num_envs
slots. A slot holds the newest frame of the observation acted on at that step, with the action
and the transition's n-step return; where an episode ends, one more slot holds the newest frame
of its final observation (a frame without a transition). So capacity_steps counts frames:
transitions kept = capacity_steps - episodes kept - num_envs, a fraction of a percent on Atari.

Stacks. The observation at slot s is the frames of slots s-3..s, where slots before the
episode's first frame repeat that first frame, as gymnasium's
FrameStackObservation(padding_type="reset") does; ep_pos[s] (agent steps since the episode's
first frame) tells where that is, so a stack never crosses an episode boundary. The next
observation is the stack at slot s + k, k the n-step length (replay.nstep).

Validity. A slot is sampled only once its n-step window has closed, and only while the frames
its stacks need exist: writing slot s invalidates s and the frame_stack - 1 slots after it (the
oldest ones, whose history s was).

Resume. The loop resets its envs after loading; the first add() after load() closes the windows
that were open when the replay was saved (bootstrapping from the last stored frame) and starts
new episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from howsure.replay.batch import Batch
from howsure.replay.files import LEGACY_HEADER, FolderWriter, load_array, read_header
from howsure.replay.frames import FrameStore
from howsure.replay.memory import check_fits
from howsure.replay.nstep import NStepAccumulator
from howsure.replay.prioritized import PrioritySampler, PrioritySettings, priority_settings

from howsure.errors import UserError

MAX_EP_POS = 255  # ep_pos is uint8; only values below frame_stack matter


@dataclass(frozen=True)
class AtariSettings:
    """The `replay.atari` sub-section."""

    compress: bool = False  # lz4-compress each stored frame (~25x smaller on Pong; slower sampling)


class AtariReplay:
    # per-slot arrays besides the frames, saved as .npy
    _SLOT_ARRAYS = ("actions", "returns", "discounts", "next_k", "ep_pos", "valid")

    sequences = False  # samples single transitions; recurrent agents need replay.kind=sequence
    Settings = AtariSettings

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, gamma: float,
                 seed: int = 0, *, n_step: int = 1, priority: PrioritySettings | None = None,
                 compress: bool = False, n_actions: int = 256):
        obs_shape = tuple(int(d) for d in obs_shape)
        if len(obs_shape) != 3 or np.dtype(obs_dtype) != np.uint8:
            raise UserError(f"replay.kind=atari needs stacked uint8 frames (frame_stack, H, W), as ALE/ envs "
                            f"give; this env gives {obs_shape} {np.dtype(obs_dtype)}: use replay.kind=uniform")
        if capacity <= 0:
            raise UserError(f"replay.capacity_steps must be positive, got {capacity}")
        if n_step < 1 or n_step > 255:
            raise UserError(f"replay.n_step must be between 1 and 255, got {n_step}")
        self.capacity, self.gamma, self.n_step, self.compress = capacity, gamma, n_step, compress
        self.stack, self.frame_shape = obs_shape[0], obs_shape[1:]
        self.action_dtype = np.dtype(np.uint8 if n_actions <= 256 else np.int64)
        planned = self.planned_bytes(capacity, obs_shape, priority is not None, compress, n_actions)
        check_fits(planned, f"an Atari replay of {capacity:,} frames"
                   + (" (lz4, assuming 2x compression)" if compress else ""),
                   fix="lower replay.capacity_steps" + ("" if compress else " or set replay.atari.compress=true"))
        self.frames = FrameStore(capacity, self.frame_shape, compress)
        self.actions = np.zeros(capacity, dtype=self.action_dtype)
        self.returns = np.zeros(capacity, dtype=np.float32)  # n-step discounted reward sums
        self.discounts = np.zeros(capacity, dtype=np.float32)  # gamma^k, 0 where bootstrapping ends
        self.next_k = np.zeros(capacity, dtype=np.uint8)  # the next observation is k slots later
        self.ep_pos = np.zeros(capacity, dtype=np.uint8)  # agent steps since the episode's first frame
        self.valid = np.zeros(capacity, dtype=np.bool_)  # can be sampled
        self.priority = PrioritySampler(capacity, priority) if priority is not None else None
        self.rng = np.random.default_rng(seed)
        self.n_valid = 0
        self.steps_added = 0  # agent steps (rows) ever added: the clock of beta's annealing
        self._back = np.arange(self.stack - 1, -1, -1)
        self._layout(0)

    @classmethod
    def from_config(cls, cfg, spec, gamma: float, seed: int) -> "AtariReplay":
        return cls(cfg.capacity_steps, spec.obs_shape, spec.obs_dtype, gamma, seed, n_step=cfg.n_step,
                   priority=priority_settings(cfg), compress=cfg.atari.compress, n_actions=spec.n_actions)

    @staticmethod
    def planned_bytes(capacity: int, obs_shape: tuple[int, ...], prioritized: bool, compress: bool,
                      n_actions: int = 256) -> int:
        """Bytes the full buffer holds (with compression: assuming the RAM check's 2x ratio)."""
        action = 1 if n_actions <= 256 else 8
        per_slot = action + 4 + 4 + 1 + 1 + 1  # actions, returns, discounts, next_k, ep_pos, valid
        tree = 2 * 2 * 8 * (1 << max(0, int(capacity - 1).bit_length())) if prioritized else 0
        return FrameStore.planned_bytes(capacity, obs_shape[1:], compress) + capacity * per_slot + tree

    def _layout(self, n_envs: int) -> None:
        self.n_envs = n_envs
        self.seg = self.capacity // n_envs if n_envs else 0  # ring slots per env
        if n_envs and self.seg < self.n_step + self.stack + 2:
            raise UserError(f"replay.capacity_steps={self.capacity} is too small for {n_envs} envs with "
                            f"n_step={self.n_step}; use at least {n_envs * (self.n_step + self.stack + 2)}")
        # plain lists: add() touches them per env and row, where numpy scalars cost more
        self.written = [0] * n_envs  # frames each env has ever written
        self.new_episode = [True] * n_envs  # the next add starts an episode
        self._lost: list[int] = []  # slots invalidated during the current add()
        self.nstep = NStepAccumulator(n_envs, self.n_step, self.gamma)
        self._cut_episodes = False

    def __len__(self) -> int:
        return self.n_valid

    @property
    def nbytes(self) -> int:
        arrays = sum(getattr(self, name).nbytes for name in self._SLOT_ARRAYS)
        return self.frames.nbytes + arrays + (self.priority.nbytes if self.priority else 0)

    # ------------------------------------------------------------------------------ adding
    def add(self, obs, actions, rewards, next_obs, terminated, dones=None, states=None) -> None:
        """One vector-env step: a row per env (dones: the episode ended; terminated: bootstrapping did)."""
        if states is not None:
            raise UserError("replay.kind=atari keeps no recurrent state; a recurrent encoder needs "
                            "replay.kind=sequence")
        n = len(actions)
        if self.n_envs == 0:
            self._layout(n)
        elif n != self.n_envs:
            raise UserError(f"this replay is filled by {self.n_envs} envs but a step brought {n} rows; "
                            "keep env.num_envs when resuming")
        if dones is None:
            dones = terminated
        if self._cut_episodes:
            self._cut_all_episodes()
        closed_slots = []
        for e in range(n):
            if self.new_episode[e]:
                slot = self._write(e, obs[e][-1])
                self.ep_pos[slot] = 0
            else:  # the frame is already stored: it was the previous step's next observation
                slot = self.seg * e + (self.written[e] - 1) % self.seg
            self.actions[slot] = actions[e]
            after = self._write(e, next_obs[e][-1])
            self.ep_pos[after] = min(int(self.ep_pos[slot]) + 1, MAX_EP_POS)
            done = bool(dones[e])
            self.new_episode[e] = done
            for c in self.nstep.step(e, slot, rewards[e], bool(terminated[e]), done):
                closed_slots.append(self._close(c))
        self.steps_added += n
        if self._lost:
            self._invalidate(np.asarray(self._lost, dtype=np.int64))
            self._lost = []
        self._validate(closed_slots)

    def _write(self, env: int, frame: np.ndarray) -> int:
        written, seg = self.written[env], self.seg
        local = written % seg
        slot = seg * env + local
        if written >= seg:  # overwriting: this slot and those whose history it was
            for j in range(self.stack):
                other = seg * env + (local + j) % seg
                if self.valid[other]:
                    self._lost.append(other)
        self.frames.put(slot, frame)
        self.written[env] = written + 1
        return slot

    def _close(self, c) -> int:
        self.returns[c.payload] = c.ret
        self.discounts[c.payload] = c.discount
        self.next_k[c.payload] = c.k
        return c.payload

    def _validate(self, slots: list[int]) -> None:
        if not slots:
            return
        slots = np.asarray(slots, dtype=np.int64)
        self.n_valid += len(slots) - int(self.valid[slots].sum())
        self.valid[slots] = True
        if self.priority is not None:
            self.priority.add_new(slots)

    def _invalidate(self, slots: np.ndarray) -> None:
        slots = np.unique(slots)
        lost = slots[self.valid[slots]]
        if lost.size:
            self.valid[lost] = False
            self.n_valid -= int(lost.size)
            if self.priority is not None:
                self.priority.remove(lost)

    def _cut_all_episodes(self) -> None:
        """Close the windows left open at save time; the envs start new episodes."""
        closed = [self._close(c) for e in range(self.n_envs) for c in self.nstep.flush(e)]
        self._validate(closed)
        self.new_episode = [True] * self.n_envs
        self._cut_episodes = False

    # ---------------------------------------------------------------------------- sampling
    def stack_slots(self, slots: np.ndarray) -> np.ndarray:
        """(B, frame_stack) slots of the frames that make up the observation at each slot."""
        slots = np.asarray(slots, dtype=np.int64)
        base = slots - slots % self.seg
        back = np.minimum(self._back[None, :], self.ep_pos[slots][:, None].astype(np.int64))
        return base[:, None] + ((slots - base)[:, None] - back) % self.seg

    def next_slots(self, slots: np.ndarray) -> np.ndarray:
        slots = np.asarray(slots, dtype=np.int64)
        base = slots - slots % self.seg
        return base + (slots - base + self.next_k[slots]) % self.seg

    def batch_at(self, slots: np.ndarray, weights: np.ndarray | None = None) -> Batch:
        """The transitions stored at `slots` (valid ones), as a Batch."""
        slots = np.asarray(slots, dtype=np.int64)
        frames = self.frames.get(np.concatenate([self.stack_slots(slots),
                                                 self.stack_slots(self.next_slots(slots))]))
        b = len(slots)
        return Batch(
            obs=torch.from_numpy(frames[:b]),
            actions=torch.from_numpy(self.actions[slots].astype(np.int64)),
            rewards=torch.from_numpy(self.returns[slots]),
            next_obs=torch.from_numpy(frames[b:]),
            discounts=torch.from_numpy(self.discounts[slots]),
            weights=None if weights is None else torch.from_numpy(weights),
            indices=slots,
        )

    def valid_slots(self) -> np.ndarray:
        return np.flatnonzero(self.valid)

    def sample(self, batch_size: int) -> Batch:
        if self.n_valid == 0:
            raise RuntimeError("sample() on a replay with no complete transition yet")
        if self.priority is not None:
            slots, weights = self.priority.sample(batch_size, self.rng, self.steps_added)
            return self.batch_at(slots, weights)
        return self.batch_at(self._uniform_slots(batch_size))

    def _uniform_slots(self, batch_size: int) -> np.ndarray:
        """Uniform over valid slots: uniform over written slots, drawing invalid ones again."""
        fill = np.minimum(np.asarray(self.written, dtype=np.int64), self.seg)
        ends = np.cumsum(fill)
        out = np.empty(batch_size, dtype=np.int64)
        todo = np.arange(batch_size)
        for _ in range(10_000):
            r = self.rng.integers(0, ends[-1], size=len(todo))
            env = np.searchsorted(ends, r, side="right")
            slots = env * self.seg + r - (ends[env] - fill[env])
            ok = self.valid[slots]
            out[todo[ok]] = slots[ok]
            todo = todo[~ok]
            if not len(todo):
                return out
        raise RuntimeError("could not draw valid replay slots")

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """New |TD error| of sampled slots; slots overwritten since they were sampled are skipped."""
        if self.priority is None:
            return
        indices = np.asarray(indices, dtype=np.int64)
        keep = self.valid[indices]
        self.priority.update(indices[keep], np.asarray(priorities).reshape(-1)[keep])

    # ------------------------------------------------------------------------- save / load
    def _settings(self) -> dict:
        return {"kind": "atari", "capacity": self.capacity, "obs_shape": [self.stack, *self.frame_shape],
                "n_step": self.n_step, "gamma": self.gamma, "compress": self.compress,
                "prioritized": self.priority is not None, "action_dtype": self.action_dtype.str}

    def save(self, directory) -> str:
        """A generation of chunked .npy files and a JSON header (replay/files.py); only changed
        chunks are rewritten. Returns the header's name."""
        writer = FolderWriter(directory)
        files = self.frames.save(writer)
        for name in self._SLOT_ARRAYS:
            files[name] = writer.write(name, getattr(self, name))
        header = {**self._settings(), "n_envs": self.n_envs, "written": list(self.written),
                  "new_episode": list(self.new_episode), "pending": self.nstep.state(),
                  "cut_episodes": self._cut_episodes, "n_valid": self.n_valid,
                  "steps_added": self.steps_added, "rng": self.rng.bit_generator.state}
        if self.priority is not None:
            files["priorities"] = writer.write("priorities", self.priority.leaves(self.capacity))
            header["priority"] = self.priority.state()
        return writer.commit(header, files)

    def load(self, directory, header_name: str = LEGACY_HEADER) -> None:
        header = read_header(directory, header_name)
        saved = {k: header.get(k) for k in self._settings()}
        if saved != self._settings():
            diff = ", ".join(f"{k}: saved {saved[k]!r}, now {v!r}" for k, v in self._settings().items()
                             if saved[k] != v)
            raise UserError(f"replay in {str(directory)!r} was saved with other settings ({diff}); "
                            "keep the replay and agent.gamma settings on resume")
        try:
            files = header["files"]
            self.frames.load(directory, files)
            for name in self._SLOT_ARRAYS:
                arr = load_array(directory, files[name])
                target = getattr(self, name)
                if arr.shape != target.shape or arr.dtype != target.dtype:
                    raise ValueError(f"{name} has shape {arr.shape} {arr.dtype}")
                target[:] = arr
            if self.priority is not None:
                leaves = load_array(directory, files["priorities"])
                if leaves.shape != (self.capacity,):
                    raise ValueError("priorities have the wrong shape")
                self.priority.restore(header["priority"], leaves)
            n_envs = int(header["n_envs"])
            if n_envs < 0 or len(header["pending"]) != n_envs:
                raise ValueError(f"n_envs {n_envs} does not match the pending windows")
            self._layout(n_envs)
            written = [int(w) for w in header["written"]]
            new_episode = [bool(d) for d in header["new_episode"]]
            if len(written) != self.n_envs or len(new_episode) != self.n_envs:
                raise ValueError("written/new_episode do not match n_envs")
            if any(w < 0 for w in written):
                raise ValueError("negative write positions")
            self.nstep.restore(header["pending"])
            self.n_valid, self.steps_added = int(header["n_valid"]), int(header["steps_added"])
            self.rng.bit_generator.state = header["rng"]
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            raise UserError(f"replay in {str(directory)!r} is corrupt ({str(err)[:100]}); "
                            "resume without the replay by deleting that folder") from None
        self.written, self.new_episode = written, new_episode
        # the loop starts fresh episodes after a resume (see the module docstring)
        self._cut_episodes = True


__all__ = ["AtariReplay"]
