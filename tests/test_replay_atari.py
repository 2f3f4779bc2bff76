"""The frame-deduplicating Atari replay: stacks, n-step returns, save/load, memory, and the CLI."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter, deque
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from howsure.envs.make import EnvSpec
from howsure.replay import ReplayConfig, make_replay
from howsure.replay.atari import AtariReplay, AtariSettings
from howsure.replay.files import collect
from howsure.replay.prioritized import PrioritySettings
from howsure.replay.uniform import UniformReplay

from howsure import config, envs
from howsure.errors import UserError

# one xdist worker runs this module, so its module-scoped run fixture trains once
pytestmark = pytest.mark.xdist_group("test_replay_atari")

ROOT = Path(__file__).resolve().parents[1]


def _key(obs, action, reward, next_obs, discount) -> tuple:
    digest = lambda a: hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()  # noqa: E731
    return digest(obs), int(action), round(float(reward), 5), digest(next_obs), round(float(discount), 5)


def _stored(buffer: AtariReplay) -> Counter:
    slots = buffer.valid_slots()
    b = buffer.batch_at(slots)
    return Counter(_key(b.obs[i].numpy(), b.actions[i], b.rewards[i], b.next_obs[i].numpy(), b.discounts[i])
                   for i in range(len(slots)))


# ----------------------------------------------------------------------------- real Pong frames


@pytest.fixture(scope="module")
def pong_stream():
    """Two Pong envs stepping together with random actions until each has ended 3+ episodes.

    Episodes are cut at 400 emulator frames (100 agent steps, a truncation); a lost point is
    marked terminated (bootstrapping ends mid-episode, like a lost life), so the stream holds
    episode starts, truncations and terminal steps of both envs, interleaved row by row.
    """
    cfg = config.EnvConfig(id="ALE/Pong-v5", max_episode_frames=400, num_envs=2)
    stepper = envs.VectorStepper(envs.make_vector_env(cfg, 2))
    rng = np.random.default_rng(0)
    obs = stepper.reset(seed=0)
    steps, ended = [], np.zeros(2, dtype=int)
    while ended.min() < 3:
        actions = rng.integers(0, 6, size=2)
        st = stepper.step(actions)
        terminated = st.terminated | (st.rewards < 0)
        steps.append((obs.copy(), actions, st.rewards.copy(), st.next_obs.copy(), terminated, st.dones.copy()))
        ended += st.dones
        obs = st.obs
    stepper.close()
    return steps


def _fill(buffer, steps) -> None:
    for obs, actions, rewards, next_obs, terminated, dones in steps:
        buffer.add(obs, actions, rewards, next_obs, terminated, dones)


def _nstep_reference(steps, env: int, n_step: int, gamma: float) -> Counter:
    """n-step transitions of one env, straight from the definition (windows still open are left out)."""
    out = Counter()
    for i, (obs, actions, *_rest) in enumerate(steps):
        ret = 0.0
        for k, (_, _, rewards, next_obs, terminated, dones) in enumerate(steps[i:], start=1):
            ret += gamma ** (k - 1) * float(rewards[env])
            if terminated[env] or dones[env] or k == n_step:
                discount = 0.0 if terminated[env] else gamma ** k
                out[_key(obs[env], actions[env], ret, next_obs[env], discount)] += 1
                break
    return out


@pytest.mark.parametrize("n_step", [1, 3])
def test_stacks_rebuilt_from_frames_equal_pong_observations(pong_stream, n_step):
    gamma = 0.99
    buffer = AtariReplay(4_000, (4, 84, 84), np.uint8, gamma, n_step=n_step)
    _fill(buffer, pong_stream)
    expected = _nstep_reference(pong_stream, 0, n_step, gamma) + _nstep_reference(pong_stream, 1, n_step, gamma)
    assert sum(d[0] for *_, d in pong_stream) >= 3  # episode ends of env 0 ...
    assert sum(t[~d].sum() for *_, t, d in pong_stream) >= 1  # ... and terminal steps inside episodes
    assert _stored(buffer) == expected  # every transition, exactly once, stacks and all


def test_ring_overwrite_keeps_only_exact_transitions(pong_stream):
    gamma = 0.99
    for compress in (False, True):
        if compress:
            pytest.importorskip("lz4")
        buffer = AtariReplay(2 * 150, (4, 84, 84), np.uint8, gamma, compress=compress)
        _fill(buffer, pong_stream)
        expected = Counter(_key(o[e], a[e], r[e], n[e], 0.0 if t[e] else gamma)
                           for o, a, r, n, t, _ in pong_stream for e in range(2))
        stored = _stored(buffer)
        assert not stored - expected  # nothing stale or stitched across the ring's seam
        assert len(buffer) >= 2 * (150 - 4 - 2 * 3)  # a few slots per env lost to stack history / tails
        assert len(buffer) == int(buffer.valid.sum())
    assert buffer.frames.nbytes < 300 * 1_500  # lz4: a Pong frame is a few hundred bytes


# ----------------------------------------------------------------------------- n-step, by hand


def _frame(i: int) -> np.ndarray:
    return np.full((2, 2), i, dtype=np.uint8)


def _episode_steps(first: int, rewards, terminated, done_last=True):
    """One env's steps with frame ids first, first+1, ...; stacks pad with the first frame."""
    window = deque([_frame(first)] * 4, maxlen=4)
    rows = []
    for t, (r, term) in enumerate(zip(rewards, terminated)):
        obs = np.stack(window)
        window.append(_frame(first + t + 1))
        done = term or (done_last and t == len(rewards) - 1)
        rows.append((obs[None], np.array([t + 1]), np.array([r], dtype=np.float32), np.stack(window)[None],
                     np.array([term]), np.array([done])))
    return rows


@pytest.mark.parametrize("kind", ["atari", "uniform"])
def test_nstep_returns_equal_hand_computed(kind):
    gamma = 0.5
    # episode A: 5 steps cut by a time limit (truncated); episode B: terminal at its 3rd step
    rows = _episode_steps(10, [1, 2, 3, 4, 5], [False] * 5) + _episode_steps(50, [1, 1, 8], [False, False, True])
    if kind == "atari":
        buffer = AtariReplay(64, (4, 2, 2), np.uint8, gamma, n_step=3)
    else:
        buffer = UniformReplay(64, (4, 2, 2), np.uint8, gamma, n_step=3)
    _fill(buffer, rows)
    if kind == "atari":
        b = buffer.batch_at(buffer.valid_slots())
        obs, actions, rets, discounts, next_obs = (b.obs.numpy(), b.actions.numpy(), b.rewards.numpy(),
                                                   b.discounts.numpy(), b.next_obs.numpy())
    else:
        n = len(buffer)
        obs, actions, rets, discounts, next_obs = (buffer.obs[:n], buffer.actions[:n], buffer.rewards[:n],
                                                   buffer.discounts[:n], buffer.next_obs[:n])
    got = {(int(obs[i, -1, 0, 0]), int(actions[i])): (float(rets[i]), float(discounts[i]), int(next_obs[i, -1, 0, 0]))
           for i in range(len(actions))}
    # (newest frame id, action) -> (return, discount, newest frame id of the bootstrap state)
    assert got == {
        (10, 1): (1 + 0.5 * 2 + 0.25 * 3, 0.125, 13),
        (11, 2): (2 + 0.5 * 3 + 0.25 * 4, 0.125, 14),
        (12, 3): (3 + 0.5 * 4 + 0.25 * 5, 0.125, 15),
        (13, 4): (4 + 0.5 * 5, 0.25, 15),  # truncated: bootstrap from the final observation
        (14, 5): (5.0, 0.5, 15),
        (50, 1): (1 + 0.5 * 1 + 0.25 * 8, 0.0, 53),  # terminal inside the window
        (51, 2): (1 + 0.5 * 8, 0.0, 53),
        (52, 3): (8.0, 0.0, 53),
    }
    # stacks pad with the episode's first frame and never reach back into episode A
    second_of_b = [i for i in range(len(actions)) if int(obs[i, -1, 0, 0]) == 51][0]
    assert obs[second_of_b, :, 0, 0].tolist() == [50, 50, 50, 51]


def test_prioritized_atari_replays_high_td_and_never_overwritten_slots():
    buffer = AtariReplay(200, (4, 6, 6), np.uint8, 0.9, seed=0,
                         priority=PrioritySettings(alpha=1.0, beta_start=0.5, beta_anneal_steps=0, eps=0.0))
    _synthetic(buffer, 1, 150)
    valid = buffer.valid_slots()
    buffer.update_priorities(valid, np.full(len(valid), 0.01))
    hot = valid[:5]
    buffer.update_priorities(hot, np.full(5, 100.0))
    batch = buffer.sample(64)
    assert np.isin(batch.indices, hot).mean() > 0.9  # 500 of ~501.4 total priority
    w = batch.weights.numpy()
    assert np.allclose(w[np.isin(batch.indices, hot)], (100.0 / 0.01) ** -1.0)  # beta = 1 (no annealing)
    _synthetic(buffer, 1, 190, seed=2)  # the ring turns over: old priorities must not leak
    assert len(buffer) == int(buffer.valid.sum())
    for _ in range(20):
        assert buffer.valid[buffer.sample(32).indices].all()


# ----------------------------------------------------------------------------- save / load


def _synthetic(buffer, n_envs: int, steps: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    shape = buffer.frame_shape if isinstance(buffer, AtariReplay) else buffer.obs.shape[2:]
    obs = rng.integers(0, 255, size=(n_envs, 4, *shape), dtype=np.uint8)
    for _ in range(steps):
        nxt = np.concatenate([obs[:, 1:], rng.integers(0, 255, size=(n_envs, 1, *shape), dtype=np.uint8)], 1)
        dones = rng.random(n_envs) < 0.05
        terminated = dones & (rng.random(n_envs) < 0.5)
        buffer.add(obs, rng.integers(0, 6, n_envs), rng.normal(size=n_envs).astype(np.float32), nxt,
                   terminated, dones)
        obs = np.where(dones[:, None, None, None], np.repeat(nxt[:, -1:], 4, axis=1), nxt)


def _same_samples(a, b, draws: int = 3) -> None:
    for _ in range(draws):
        x, y = a.sample(16), b.sample(16)
        for field in ("obs", "actions", "rewards", "next_obs", "discounts", "weights"):
            fx, fy = getattr(x, field), getattr(y, field)
            assert (fx is None and fy is None) or bool((fx == fy).all()), field
        assert np.array_equal(x.indices, y.indices)
        if a.priority is not None:
            td = np.abs(x.rewards.numpy()) + 0.1
            a.update_priorities(x.indices, td)
            b.update_priorities(y.indices, td)


@pytest.mark.parametrize("options", [{}, {"compress": True}, {"priority": PrioritySettings(), "n_step": 3}])
def test_atari_save_load_round_trips_exactly(tmp_path, options):
    if options.get("compress"):
        pytest.importorskip("lz4")
    make = lambda: AtariReplay(600, (4, 6, 6), np.uint8, 0.9, seed=3, **options)  # noqa: E731
    a = make()
    _synthetic(a, 2, 200)
    first = a.save(tmp_path / "replay")
    _synthetic(a, 2, 250, seed=1)  # wrap the ring, then save again into the same folder
    header_name = a.save(tmp_path / "replay")
    removed = collect(tmp_path / "replay", header_name)  # what a checkpoint naming it does once written
    assert first in {p.name for p in removed}
    b = make()
    b.load(tmp_path / "replay", header_name)
    for name in AtariReplay._SLOT_ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.frames.get(np.arange(600)), b.frames.get(np.arange(600)))
    assert len(a) == len(b) and a.steps_added == b.steps_added
    _same_samples(a, b)
    # one header plus the files it names; earlier saves' files are gone
    header = json.loads((tmp_path / "replay" / header_name).read_text())
    assert sorted(p.name for p in (tmp_path / "replay").glob("*.npy")) == sorted(header["files"].values())
    # after a resume the loop starts new episodes: the first stack repeats its first frame
    frame = np.full((2, 4, 6, 6), 7, dtype=np.uint8)
    b.add(frame, np.zeros(2), np.zeros(2), frame, np.zeros(2, bool), np.zeros(2, bool))
    assert b.ep_pos[b.seg * 0 + (b.written[0] - 2) % b.seg] == 0


@pytest.mark.parametrize("options", [{}, {"priority": PrioritySettings()}])
def test_uniform_save_load_round_trips_exactly(tmp_path, options):
    a = UniformReplay(300, (4, 3, 3), np.uint8, 0.9, seed=5, **options)
    _synthetic(a, 2, 200)
    name = a.save(tmp_path / "replay")
    b = UniformReplay(300, (4, 3, 3), np.uint8, 0.9, seed=5, **options)
    b.load(tmp_path / "replay", name)
    for name in UniformReplay._ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    _same_samples(a, b)


def test_load_refuses_other_settings(tmp_path):
    a = AtariReplay(100, (4, 6, 6), np.uint8, 0.9)
    _synthetic(a, 1, 20)
    name = a.save(tmp_path / "r")
    with pytest.raises(UserError, match="n_step"):
        AtariReplay(100, (4, 6, 6), np.uint8, 0.9, n_step=3).load(tmp_path / "r", name)


# ----------------------------------------------------------------------------- memory


def _benchmark():
    spec = importlib.util.spec_from_file_location("replay_memory", ROOT / "benchmarks" / "replay_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nature_sized_replay_constructs_and_matches_the_benchmark():
    buffer = AtariReplay(1_000_000, (4, 84, 84), np.uint8, 0.99, n_actions=6)  # not filled: pages stay lazy
    allocated = _benchmark().allocated_bytes_per_transition(1_000_000)
    assert buffer.nbytes / 1_000_000 == allocated
    assert allocated <= 7_200


def test_ram_check_fails_fast_with_a_user_error():
    frames = EnvSpec("ALE/Pong-v5", spaces.Box(0, 255, (4, 84, 84), np.uint8), 6)
    with pytest.raises(UserError, match="GiB"):
        make_replay(ReplayConfig(kind="atari", capacity_steps=10**11), frames, 0.99, seed=0)
    with pytest.raises(UserError, match="GiB"):
        compressed = ReplayConfig(kind="atari", capacity_steps=10**12, atari=AtariSettings(compress=True))
        make_replay(compressed, frames, 0.99, seed=0)
    vectors = EnvSpec("CartPole-v1", spaces.Box(-1, 1, (4,), np.float32), 2)
    with pytest.raises(UserError, match="uint8"):
        make_replay(ReplayConfig(kind="atari"), vectors, 0.99, seed=0)


# ----------------------------------------------------------------------------- through train.py


def test_train_on_pong_with_atari_replay_and_resume_keeps_it(tmp_path, cli):
    run = tmp_path / "run"
    # few updates (each costs a Nature-CNN forward/backward): the replay is what is under test
    args = ["--config", "configs/dqn_pong.yaml", f"run_dir={run}", "--quiet", "total_steps=240",
            "env.num_envs=2", "env.max_episode_frames=400", "replay.kind=atari", "replay.capacity_steps=2000",
            "replay.n_step=3", "replay.prioritized=true", "agent.learning_starts_steps=216", "torch_threads=1",
            "eval.every_steps=0", "checkpoint_every_steps=1000", "log.every_steps=40"]
    first = cli("train.py", *args)
    assert first.returncode == 0, first.stderr[-2000:]
    named = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["replay"]
    header = json.loads((run / "replay" / named).read_text())
    assert header["kind"] == "atari" and header["steps_added"] == 240 and header["n_valid"] > 200
    second = cli("train.py", "--resume", str(run), "--quiet", "total_steps=280")
    assert second.returncode == 0, second.stderr[-2000:]
    named = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["replay"]
    header = json.loads((run / "replay" / named).read_text())
    assert header["steps_added"] == 280  # 240 loaded + 40 new: the replay came back
    leaves = np.load(run / "replay" / header["files"]["priorities"])
    valid = np.load(run / "replay" / header["files"]["valid"])
    assert len(np.unique(leaves[valid])) > 10  # |TD| of sampled slots reached update_priorities
