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


def _nchw_and_nhwc(*overrides: str):
    """Two Pong agents with the same weights, NCHW and channels-last, under the same overrides."""
    torch.manual_seed(0)
    _, _, plain = _pong_agent(*overrides)
    _, _, nhwc = _pong_agent(*overrides, "agent.channels_last=true")
    nhwc.q.load_state_dict(plain.q.state_dict())
    nhwc.target.load_state_dict(plain.target.state_dict())
    return plain, nhwc


def test_channels_last_agent_computes_what_the_nchw_one_does():
    plain, nhwc = _nchw_and_nhwc()
    for agent, want in ((plain, False), (nhwc, True)):
        for net in (agent.q, agent.target):
            conv = net.encoder.convs[0].weight
            assert conv.is_contiguous(memory_format=torch.channels_last) is want and conv.is_contiguous() is not want
    obs = _frames(8)
    with torch.no_grad():
        torch.testing.assert_close(nhwc.q(obs), plain.q(obs), rtol=1e-4, atol=1e-5)
        assert np.array_equal(nhwc.greedy(obs[:1].numpy()), plain.greedy(obs[:1].numpy()))  # acting on one screen
    batch = Batch(obs, torch.arange(8) % 6, torch.ones(8), _frames(8, 1), torch.full((8,), 0.99))
    for _ in range(2):
        m_plain, m_nhwc = plain.update(batch), nhwc.update(batch)
        assert m_nhwc["losses/td_loss"] == pytest.approx(m_plain["losses/td_loss"], rel=1e-4)
    for a, b in zip(plain.q.parameters(), nhwc.q.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    plain.q.load_state_dict(nhwc.q.state_dict())  # a checkpoint of either layout loads into the other
    assert plain.q.encoder.convs[0].weight.is_contiguous()


def test_channels_last_under_bf16_autocast_learns_what_nchw_does():
    """auto runs bf16 convolutions channels-last where the CPU has AMX: the same update, up to bf16 rounding."""
    plain, nhwc = _nchw_and_nhwc("agent.bf16_autocast=true")
    assert nhwc.q.encoder.convs[0].weight.is_contiguous(memory_format=torch.channels_last)
    obs = _frames(8)
    batch = Batch(obs, torch.arange(8) % 6, torch.ones(8), _frames(8, 1), torch.full((8,), 0.99))
    before = [p.detach().clone() for p in plain.q.parameters()]
    m_plain, m_nhwc = plain.update(batch), nhwc.update(batch)
    assert m_nhwc["losses/td_loss"] == pytest.approx(m_plain["losses/td_loss"], rel=5e-3)
    for a, b, w0 in zip(plain.q.parameters(), nhwc.q.parameters(), before):
        step_plain, step_nhwc = a.detach() - w0, b.detach() - w0
        assert step_plain.abs().sum() > 0  # the update moved the weights
        assert torch.nn.functional.cosine_similarity(step_nhwc.flatten(), step_plain.flatten(), dim=0) > 0.99


def test_reuse_freed_memory_stops_the_page_faults_of_each_update():
    # glibc hands an update's multi-MiB blocks back to the OS and faults them in again next time
    # (until its adaptive threshold catches up, if it does); a fresh process, since the setting
    # lasts for the process
    import subprocess
    import sys
    import textwrap

    from howsure.runtime import has_glibc

    if not has_glibc():
        pytest.skip("mallopt is glibc's")
    code = textwrap.dedent("""
        import ctypes, resource
        import numpy as np, torch
        from howsure import envs, wiring
        from howsure.agents import make_agent
        from howsure.replay.batch import Batch
        from howsure.runtime import reuse_freed_memory
        cfg = wiring.load("configs/dqn_pong.yaml")
        agent = make_agent(cfg, envs.spec_of(cfg.env.id, envs.make_env(cfg.env)))
        obs = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (32, 4, 84, 84), dtype=np.uint8))
        batch = Batch(obs, torch.zeros(32, dtype=torch.int64), torch.ones(32), obs.clone(), torch.full((32,), 0.99))
        def faults(n=5):
            start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(n):
                agent.update(batch)
            return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / n
        # glibc's starting threshold, held: it adapts it after frees, how soon depends on the history
        assert ctypes.CDLL(None).mallopt(-3, 128 * 1024)
        faults()
        before = faults()
        assert reuse_freed_memory()
        faults()
        print(before, faults())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = map(float, out.stdout.split())
    assert before > 100 and after < before / 10, (before, after)


def test_tall_linear_products_give_nn_linears_values_and_gradients():
    from howsure.encoders.linear import Linear

    torch.manual_seed(0)
    fast, ref = Linear(300, 64), torch.nn.Linear(300, 64)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(32, 300, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    grad = torch.randn(32, 64)
    y, y_ref = fast(x), ref(x_ref)
    assert y.grad_fn is not None and "TallProducts" in type(y.grad_fn).__name__  # the transposed products ran
    y.backward(grad)
    y_ref.backward(grad)
    torch.testing.assert_close(y, y_ref)
    for a, b in ((x.grad, x_ref.grad), (fast.weight.grad, ref.weight.grad), (fast.bias.grad, ref.bias.grad)):
        torch.testing.assert_close(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast keeps nn.Linear's bf16 product
        assert fast(x).dtype == torch.bfloat16


@pytest.mark.parametrize("nhwc", [False, True])
def test_image_batch_is_the_scaled_float_batch_in_either_layout(nhwc):
    from howsure.encoders.image import image_batch

    frames = _frames(3)
    x = image_batch(frames, hwc=False, scale=255.0, nhwc=nhwc)
    assert torch.equal(x, frames.float() / 255.0)  # bit for bit: converted, then divided
    assert x.is_contiguous(memory_format=torch.channels_last) is nhwc
    floats = torch.rand(2, 4, 8, 8)
    assert image_batch(floats, hwc=False, scale=1.0) is floats  # nothing copied, nothing divided in place
    assert torch.equal(image_batch(floats, hwc=False, scale=2.0), floats / 2) and floats.max() <= 1
