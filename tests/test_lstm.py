"""The LSTM encoder and recurrent DQN (DRQN with R2D2's stored state and burn-in)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from howsure.agents import make_agent
from howsure.agents.recurrent import unroll
from howsure.replay import Batch, make_replay

from howsure import envs, wiring
from howsure.errors import UserError

LSTM = ["encoder.name=lstm", "encoder.lstm.embed_hidden_sizes=[16]", "encoder.lstm.hidden_size=8",
        "replay.kind=sequence", "replay.sequence.length_steps=5", "replay.sequence.burn_in_steps=3"]


def build(*overrides: str, env_id: str = "CartPoleNoVel-v1"):
    cfg = wiring.load(None, [f"env.id={env_id}", "agent.name=dqn", *LSTM, *overrides])
    env = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, env)
    torch.manual_seed(0)
    return cfg, env, spec, make_agent(cfg, spec)


def test_cartpole_novel_hides_both_velocities():
    import gymnasium as gym

    full, masked = gym.make("CartPole-v1"), gym.make("CartPoleNoVel-v1")
    a, _ = full.reset(seed=4)
    b, _ = masked.reset(seed=4)
    for t in range(20):
        np.testing.assert_array_equal(b, a * np.array([1, 0, 1, 0], np.float32))
        assert a[1] != 0 or a[3] != 0
        a, *_ = full.step(t % 2)
        b, *_ = masked.step(t % 2)
    assert masked.spec.max_episode_steps == 500


def test_packed_lengths_match_step_by_step():
    _, _, _, agent = build()
    enc = agent.q.encoder
    obs = torch.randn(4, 6, 4)
    state = torch.randn(4, enc.state_size)
    lengths = torch.tensor([0, 1, 3, 6])
    _, packed = enc(obs, state, lengths=lengths)
    for i, n in enumerate(lengths.tolist()):
        s = state[i:i + 1]
        for t in range(n):
            _, s = enc(obs[i:i + 1, t:t + 1], s)
        torch.testing.assert_close(packed[i:i + 1], s)


def test_burn_in_steps_carry_no_gradient():
    _, _, _, agent = build()
    enc = agent.q.encoder
    obs = torch.randn(3, 4 + 5, 4, requires_grad=True)
    burn_mask = torch.tensor([[True] * 4, [False, True, True, True], [False] * 4])
    feats = unroll(enc, obs, enc.initial_state(3) + 0.1, 4, burn_mask)
    assert feats.shape == (3, 5, enc.out_features)
    feats.sum().backward()
    assert (obs.grad[:, :4] == 0).all()  # burn-in: no gradient at all
    assert (obs.grad[:, 4:].abs().sum(dim=(0, 2)) > 0).all()  # the window itself learns
    # the burn-in still moves the state: another prefix gives other features
    with torch.no_grad():
        other = obs.detach().clone()
        other[0, :4] += 1.0
        assert not torch.allclose(unroll(enc, other, enc.initial_state(3) + 0.1, 4, burn_mask)[0], feats[0])


def test_hidden_state_reset_at_episode_start_and_kept_apart_in_evaluation():
    _, _, _, agent = build()
    obs = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    for _ in range(3):
        agent.act(obs, 0, epsilon=None)
    before = agent.memory.get(2).clone()
    assert (before.abs().sum(1) > 0).all()
    with agent.evaluating():  # an evaluation in the middle of training
        agent.begin_episode(np.arange(5))
        agent.act(np.zeros((5, 4), np.float32), 0, epsilon=0.0)
    torch.testing.assert_close(agent.memory.get(2), before)
    agent.begin_episode(np.array([0]))
    after = agent.memory.get(2)
    assert (after[0] == 0).all() and torch.equal(after[1], before[1])
    # acting right after the reset is acting from the initial state
    _, _, _, fresh = build()
    fresh.act(obs[:1], 0, epsilon=0.0)
    agent.act(obs, 0, epsilon=None)
    torch.testing.assert_close(agent.memory.get(2)[0], fresh.memory.get(1)[0])


def test_stored_and_recomputed_states_agree():
    cfg, env, spec, agent = build("replay.capacity_steps=2000")
    vec = envs.VectorStepper(envs.make_vector_env(cfg.env, 2))
    buf = make_replay(cfg.replay, spec, 0.99, seed=0)
    obs = vec.reset(seed=0)
    agent.begin_episode(np.arange(2))
    for step in range(300):
        actions = agent.act(obs, 0)  # epsilon 1 at step 0: random actions, the state still moves
        st = vec.step(actions)
        buf.add(obs, actions, st.rewards, st.next_obs, st.terminated, st.dones, states=agent.replay_state())
        if st.dones.any():
            agent.begin_episode(np.flatnonzero(st.dones))
        if step == 150:
            with agent.evaluating():
                agent.begin_episode(np.arange(3))
                agent.act(np.zeros((3, 4), np.float32), 0, epsilon=0.0)
        obs = st.obs
    batch = buf.sample(16)
    enc = agent.q.encoder
    checked = 0
    for (e, start), real_burn, state in zip(batch.indices, batch.burn_in_mask.sum(1).tolist(), batch.states):
        first = start - real_burn
        ep_start = buf.ep_start[e, first % buf.rows]
        rows = np.arange(ep_start, first) % buf.rows
        s = enc.initial_state(1)
        with torch.no_grad():
            if len(rows):
                _, s = enc(torch.as_tensor(buf.obs[e, rows])[None], s)
        torch.testing.assert_close(s[0], state, atol=1e-5, rtol=1e-4)
        checked += int(len(rows) > 0)
    assert checked > 0
    # a DRQN update on these windows runs and moves the weights; steps past the end are masked
    w = agent.q.head.advantage.weight.clone()
    metrics = agent.update(batch)
    assert np.isfinite(metrics["losses/td_loss"]) and not torch.equal(w, agent.q.head.advantage.weight)
    q1, t1 = agent.sequence_q_and_target(batch)
    noisy = type(batch)(**{**batch.__dict__, "rewards": torch.where(batch.mask, batch.rewards, 1e6)})
    q2, t2 = agent.sequence_q_and_target(noisy)
    torch.testing.assert_close(t1, t2)
    assert len(q1) == int(batch.mask.sum())


def test_recurrent_agent_refuses_transition_batches():
    _, _, _, agent = build()
    b = Batch.from_numpy(np.zeros((2, 4), np.float32), [0, 1], [0.0, 0.0], np.zeros((2, 4), np.float32),
                         [False, False], 0.99)
    with pytest.raises(UserError, match="replay.kind=sequence"):
        agent.update(b)


def test_flicker_blanks_screens():
    import gymnasium as gym
    from howsure.envs.flicker import Flicker

    env = Flicker(gym.make("CartPole-v1"), 0.5)
    obs, _ = env.reset(seed=0)
    blank = []
    for _ in range(400):
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        blank.append(not obs.any())
        if term or trunc:
            env.reset()
    assert 0.4 < np.mean(blank) < 0.6
    cfg = wiring.load(None, ["env.id=ALE/Pong-v5", "env.flicker_prob=1.0", "env.frame_stack=1"])
    pong = envs.make_env(cfg.env)
    obs, _ = pong.reset(seed=0)
    assert not obs.any() and not pong.step(0)[0].any()


def test_train_and_evaluate_cli_with_lstm(tmp_path, cli):
    run = tmp_path / "run"
    r = cli("train.py", "--config", "configs/drqn_cartpole_novel.yaml", "--quiet", f"run_dir={run}",
            "total_steps=400", "agent.learning_starts_steps=200", "agent.batch_size=8", "eval.every_steps=400",
            "eval.episodes=2", "eval.num_envs=2", "checkpoint_every_steps=200", "torch_threads=1",
            "env.num_envs=2", "replay.capacity_steps=2000", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (run / "checkpoints" / "final.pt").is_file()
    # the stored states are saved, in the replay generation the checkpoint names
    named = torch.load(run / "checkpoints" / "final.pt", weights_only=True)["replay"]
    header = json.loads((run / "replay" / named).read_text())
    assert header["states"] and any(k.startswith("states_") for k in header["files"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 400 and summary["best_eval_return"] is not None
    out = tmp_path / "eval.json"
    r = cli("evaluate.py", str(run), "--episodes", "2", "--json", str(out), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["env_id"] == "CartPoleNoVel-v1" and len(res["returns"]) == 2


def test_lstm_composes_with_bayes_dqn():
    """Uncertainty draws from a recurrent state: bayes_dqn acts and learns with the LSTM encoder."""
    cfg, env, spec, agent = build("agent.name=bayes_dqn", "agent.n_draws=4", "agent.head_hidden_sizes=[16]",
                                  "agent.exploration=thompson_episode", "replay.capacity_steps=2000")
    assert agent.memory is not None
    vec = envs.VectorStepper(envs.make_vector_env(cfg.env, 2))
    buf = make_replay(cfg.replay, spec, 0.99, seed=0)
    obs = vec.reset(seed=0)
    agent.begin_episode(np.arange(2))
    for _ in range(120):
        actions = agent.act(obs, 0)
        st = vec.step(actions)
        buf.add(obs, actions, st.rewards, st.next_obs, st.terminated, st.dones, states=agent.replay_state())
        if st.dones.any():
            agent.begin_episode(np.flatnonzero(st.dones))
        obs = st.obs
    assert agent.memory.get(2).abs().sum() > 0
    assert agent.last_epistemic_std().shape == (2,) and (agent.last_epistemic_std() > 0).any()
    agent.begin_episode(np.array([1]))
    assert (agent.memory.get(2)[1] == 0).all()
    before = [p.clone() for p in agent.q.encoder.parameters()]
    metrics = agent.update(buf.sample(8))
    assert np.isfinite(metrics["losses/td_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q.encoder.parameters()))


def test_chrono_initialisation_sets_gate_biases():
    """encoder.lstm.chrono_init_steps=T: forget bias log(U(1, T-1)), input bias its negative
    (Tallec & Ollivier 2018); 0 keeps the forget-gate bias of 1."""
    from howsure.encoders.lstm import LSTMConfig, LSTMEncoder

    spec = envs.spec_of("CartPoleNoVel-v1", envs.make_env(wiring.load(None, ["env.id=CartPoleNoVel-v1"]).env))
    h = 32
    torch.manual_seed(0)
    chrono = LSTMEncoder(LSTMConfig(hidden_size=h, chrono_init_steps=100), spec).lstm
    forget_ih, input_ih = chrono.bias_ih_l0[h:2 * h], chrono.bias_ih_l0[:h]
    assert (forget_ih >= 0).all() and (forget_ih <= np.log(99) + 1e-6).all()
    assert forget_ih.std() > 0.5  # spread over time scales, not one value
    torch.testing.assert_close(input_ih, -forget_ih)
    assert (chrono.bias_hh_l0[:2 * h] == 0).all()  # PyTorch adds bias_hh: the sums are the chrono values
    plain = LSTMEncoder(LSTMConfig(hidden_size=h), spec).lstm
    assert (plain.bias_ih_l0[h:2 * h] == 1).all()
    with pytest.raises(UserError, match="chrono_init_steps"):
        LSTMEncoder(LSTMConfig(hidden_size=h, chrono_init_steps=2), spec)
