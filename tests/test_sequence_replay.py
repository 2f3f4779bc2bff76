"""Sequence replay (replay/sequence.py): windows stay inside one episode, the stored state is the
one of each window's first real step, and save/load round-trips."""

from __future__ import annotations

import numpy as np
import pytest
from howsure.replay.sequence import SequenceReplay

from howsure.errors import UserError

GAMMA = 0.9


def fill(buf: SequenceReplay, n_envs: int, steps: int, seed: int = 0) -> None:
    """Episodes of random length (1..12) per env; obs = [episode id, step in episode, 1] and the
    final obs of an episode has step = its length. The state handed over = [episode id, step]."""
    rng = np.random.default_rng(seed)
    ep = np.arange(n_envs) * 1000
    t = np.zeros(n_envs, int)
    length = rng.integers(1, 13, n_envs)
    for _ in range(steps):
        obs = np.stack([ep, t, np.ones(n_envs)], 1).astype(np.float32)
        done = t + 1 >= length
        terminated = done & (ep % 2 == 0)  # odd episodes are truncated (time limit), even ones end
        next_obs = np.stack([ep, t + 1, np.ones(n_envs)], 1).astype(np.float32)
        states = np.stack([ep, t], 1).astype(np.float32)
        buf.add(obs, rng.integers(0, 3, n_envs), t.astype(np.float32), next_obs, terminated, done, states=states)
        t = np.where(done, 0, t + 1)
        ep = np.where(done, ep + 1, ep)
        length = np.where(done, rng.integers(1, 13, n_envs), length)


@pytest.mark.parametrize("stride", [1, 3])
def test_windows_never_cross_an_episode_boundary(stride):
    buf = SequenceReplay(300, (3,), np.float32, GAMMA, seed=1, sequence_steps=6, burn_in_steps=4,
                         stride_steps=stride)
    fill(buf, n_envs=3, steps=400)  # wraps the 100-row ring of each env several times
    saw_padding = saw_cut_burn_in = saw_terminal = saw_truncated_end = False
    for _ in range(20):
        b = buf.sample(64)
        obs, mask, burn = b.obs.numpy(), b.mask.numpy(), b.burn_in_mask.numpy()
        rewards, discounts = b.rewards.numpy(), b.discounts.numpy()
        for i in range(len(b)):
            start_ep, start_t = obs[i, 4, 0], obs[i, 4, 1]
            assert obs[i, 4, 2] == 1 and start_t % stride == 0
            real = np.concatenate([burn[i], [True], mask[i]])  # obs positions holding data
            assert (obs[i, real, 2] == 1).all() and (obs[i, ~real] == 0).all()
            assert (obs[i, real, 0] == start_ep).all()  # one episode only
            steps = obs[i, real, 1]
            assert (np.diff(steps) == 1).all()  # consecutive steps, burn-in included
            n = mask[i].sum()
            assert (rewards[i, :n] == steps[burn[i].sum():][:n]).all() and (rewards[i, n:] == 0).all()
            saw_padding |= n < 6
            saw_cut_burn_in |= burn[i].sum() < 4
            # the state handed over at the window's first real step comes back with it
            assert b.states[i, 0] == start_ep and b.states[i, 1] == steps[0]
            for j in range(n):  # discount 0 only where an (even) episode terminated
                last = j == n - 1
                if discounts[i, j] == 0:
                    assert last and start_ep % 2 == 0
                    saw_terminal = True
            if n < 6 and start_ep % 2 == 1:
                assert discounts[i, n - 1] == pytest.approx(GAMMA)  # truncated: bootstraps
                saw_truncated_end = True
    assert saw_padding and saw_cut_burn_in and saw_terminal and saw_truncated_end


def test_windows_from_zero_state_when_not_stored():
    buf = SequenceReplay(200, (3,), np.float32, GAMMA, sequence_steps=4, stored_state=False)
    fill(buf, 2, 100)
    assert buf.sample(8).states is None


def test_save_load_round_trip_and_resume_cuts_open_episodes(tmp_path):
    buf = SequenceReplay(200, (3,), np.float32, GAMMA, seed=3, sequence_steps=5, burn_in_steps=2)
    fill(buf, 2, 150)
    name = buf.save(tmp_path)
    other = SequenceReplay(200, (3,), np.float32, GAMMA, seed=99, sequence_steps=5, burn_in_steps=2)
    other.load(tmp_path, name)
    assert len(other) == len(buf)
    np.testing.assert_array_equal(other.obs, buf.obs)
    np.testing.assert_array_equal(other.states, buf.states)
    # the newest row of each env never got its successor: after load it ends that episode
    newest = (other.count - 1) % other.rows
    assert not other.transition[np.arange(2), newest].any()
    a, b = buf.sample(32), other.sample(32)
    assert a.obs.shape == b.obs.shape
    with pytest.raises(UserError):
        SequenceReplay(100, (3,), np.float32, GAMMA).load(tmp_path, name)  # another capacity


def test_env_count_must_stay_fixed():
    buf = SequenceReplay(100, (3,), np.float32, GAMMA, sequence_steps=4)
    fill(buf, 2, 10)
    with pytest.raises(UserError):
        fill(buf, 3, 1)
