"""The loop's speed switches (benchmarks/throughput.py) leave what is learned from unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from howsure.agents import make_agent
from howsure.replay import make_replay
from howsure.replay.batch import Batch

from howsure import checkpoint, envs, wiring
from howsure.learner import Learner
from howsure.training import prepare_run_dir, train
from tests.conftest import ROOT

CARTPOLE = ["total_steps=1200", "agent.learning_starts_steps=300", "agent.train_every_steps=2",
            "agent.updates_per_train=2", "eval.every_steps=0", "log.quiet=true", "log.every_steps=400",
            "checkpoint_every_steps=0", "checkpoint_replay=false"]


def _updates_after(tmp_path, name: str, *extra: str) -> tuple[int, dict]:
    cfg = wiring.load(ROOT / "configs" / "dqn_cartpole.yaml", [*CARTPOLE, f"run_dir={tmp_path / name}", *extra])
    cfg, run_dir = prepare_run_dir(cfg, overwrite=True)
    summary = train(cfg, run_dir)
    return checkpoint.load(run_dir / "checkpoints" / "final.pt")["agent"]["updates"], summary


def test_learner_thread_runs_exactly_the_owed_updates(tmp_path):
    inline, _ = _updates_after(tmp_path, "inline")
    threaded, summary = _updates_after(tmp_path, "threaded", "learner_thread=true")
    # steps 300..1200 every 2 steps, 2 updates each: the schedule, not the thread's timing, decides
    assert inline == threaded == ((1200 - 300) // 2 + 1) * 2
    assert summary["step"] == 1200


def _pong_agent(*overrides: str):
    cfg = wiring.load(ROOT / "configs" / "dqn_pong.yaml", list(overrides))
    env = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, env)
    env.close()
    return cfg, spec, make_agent(cfg, spec)


def _frames(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 255, (n, 4, 84, 84), dtype=np.uint8))


def test_learner_thread_hands_an_update_error_to_the_loop():
    _, pong_spec, agent = _pong_agent()
    cartpole = wiring.load(ROOT / "configs" / "dqn_cartpole.yaml")
    cart_env = envs.make_env(cartpole.env)
    buffer = make_replay(cartpole.replay, envs.spec_of(cartpole.env.id, cart_env), 0.99, seed=0)
    obs = np.zeros((1, 4), np.float32)
    for _ in range(40):  # CartPole transitions, which the Pong network cannot take
        buffer.add(obs, np.zeros(1, np.int64), np.ones(1, np.float32), obs, np.zeros(1, bool), np.zeros(1, bool))
    learner = Learner(agent, buffer, batch_size=32, threaded=True)
    with pytest.raises(RuntimeError):
        learner.learn(3)
        learner.drain()
    learner.close()


def test_bf16_autocast_keeps_q_values_float32_and_close():
    torch.manual_seed(0)
    _, _, plain = _pong_agent()
    _, _, fast = _pong_agent("agent.bf16_autocast=true")
    fast.q.load_state_dict(plain.q.state_dict())
    obs = _frames(16)
    with torch.no_grad():
        q32, q16 = plain.forward_q(plain.q, obs), fast.forward_q(fast.q, obs)
    assert q16.dtype == torch.float32
    assert torch.allclose(q16, q32, atol=0.02 * float(q32.abs().max()) + 1e-3)
    batch = Batch(obs, torch.zeros(16, dtype=torch.int64), torch.ones(16), _frames(16, 1), torch.full((16,), 0.99))
    before = [p.detach().clone() for p in fast.q.parameters()]
    metrics = fast.update(batch)
    assert np.isfinite(metrics["losses/td_loss"])
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in fast.q.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, fast.q.parameters()))


def test_env_workers_step_the_same_transitions_as_in_process_envs():
    cfg = wiring.load(ROOT / "configs" / "dqn_cartpole.yaml").env
    runs = []
    for workers in (False, True):
        stepper = envs.VectorStepper(envs.make_vector_env(cfg, 2, workers=workers))
        rng = np.random.default_rng(0)
        trace = [stepper.reset(seed=3)]
        for _ in range(60):  # long enough for random play to end (and autoreset) episodes
            stepper.send(rng.integers(0, 2, size=2))
            st = stepper.recv()
            trace += [st.obs, st.next_obs, st.rewards, st.dones]
        stepper.close()
        runs.append(trace)
    assert any(t.any() for t in runs[0][4::4]), "no episode ended: the autoreset path went untested"
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
