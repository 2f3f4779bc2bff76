"""The parts of the fast Atari path: the 2013 network, ale-py's C++ vector env, PQN, the
wall-clock cap, watch-only exports, real-speed videos and the routing of ale-py's raw ids."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from howsure.agents import make_agent
from howsure.agents.pqn import q_lambda_returns
from howsure.encoders.nips_cnn import NipsCNNConfig, NipsCNNEncoder

from howsure import envs, wiring
from howsure.errors import UserError
from tests.conftest import run_cli, run_in_process

HOUR = "configs/dqn_pong_hour.yaml"


# ------------------------------------------------------------------ the network of arXiv:1312.5602


@pytest.mark.parametrize("size, flat", [(84, 32 * 9 * 9), (42, 32 * 3 * 3)])
def test_nips_cnn_layers_and_sizes(size, flat):
    spec = envs.EnvSpec("x", __import__("gymnasium").spaces.Box(0, 255, (4, size, size), np.uint8), 6)
    enc = NipsCNNEncoder(NipsCNNConfig(), spec)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(16, (8, 8), (4, 4)), (32, (4, 4), (2, 2))]
    (fc,) = [m for m in enc.modules() if isinstance(m, torch.nn.Linear)]
    assert fc.in_features == flat and fc.out_features == 256
    out = enc(torch.randint(0, 256, (3, 4, size, size), dtype=torch.uint8))
    assert out.shape == (3, 256) and (out >= 0).all()
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in enc.modules())
    normed = NipsCNNEncoder(NipsCNNConfig(layer_norm=True), spec)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in normed.modules()) == 3


def test_nips_cnn_refuses_tiny_images():
    spec = envs.EnvSpec("x", __import__("gymnasium").spaces.Box(0, 255, (4, 10, 10), np.uint8), 6)
    with pytest.raises(UserError, match="nips_cnn"):
        NipsCNNEncoder(NipsCNNConfig(), spec)


@pytest.mark.parametrize("agent", ["dqn", "bayes_dqn", "boot_dqn", "pqn"])
def test_nips_cnn_composes_with_every_deep_agent(agent):
    cfg = wiring.load(None, [f"agent.name={agent}", "encoder.name=nips_cnn", "env.id=ALE/Pong-v5"])
    spec = envs.EnvSpec("ALE/Pong-v5", __import__("gymnasium").spaces.Box(0, 255, (4, 42, 42), np.uint8), 6)
    a = make_agent(cfg, spec)
    obs = np.random.default_rng(0).integers(0, 256, (5, 4, 42, 42), dtype=np.uint8)
    actions = a.act(obs, step=10**9, epsilon=0.0)
    assert actions.shape == (5,) and ((actions >= 0) & (actions < 6)).all()
    assert any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (8, 8) and m.out_channels == 16
               for net in a.modules().values() for m in net.modules())


# ------------------------------------------------------------------ ale-py's vector env


def test_ale_vector_screens_equal_the_gymnasium_wrappers():
    """Without FIRE on reset (Pong needs none) the two pipelines give bit-identical stacks, step
    for step, an episode's first stacks included, in both autoreset modes."""
    import gymnasium as gym
    from ale_py import AtariVectorEnv
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation
    from howsure.envs.ale_vector import FirstFramePadding

    for mode in (gym.vector.AutoresetMode.SAME_STEP, gym.vector.AutoresetMode.NEXT_STEP):
        same_step = mode == gym.vector.AutoresetMode.SAME_STEP
        vec = FirstFramePadding(AtariVectorEnv(
            "pong", 1, num_threads=1, img_height=42, img_width=42, reward_clipping=False, noop_max=0,
            repeat_action_probability=0.0, use_fire_reset=False, max_num_frames_per_episode=200,
            autoreset_mode=mode), same_step)
        single = FrameStackObservation(AtariPreprocessing(
            gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0, max_num_frames_per_episode=200),
            noop_max=0, frame_skip=4, screen_size=42), 4, padding_type="reset")
        v_obs, _ = vec.reset(seed=0)
        s_obs, _ = single.reset(seed=0)
        assert np.array_equal(v_obs[0], s_obs) and np.array_equal(s_obs[0], s_obs[3])
        rng = np.random.default_rng(1)
        resets = 0
        for t in range(130):  # 200 frames = 50 agent steps an episode: two episodes end
            a = int(rng.integers(6))
            v_obs, _, v_term, v_trunc, _ = vec.step(np.array([a]))
            s_obs, _, s_term, s_trunc, _ = single.step(a)
            if s_term or s_trunc:
                resets += 1
                if same_step:  # the vector env returns the new episode's first stack at once
                    s_obs, _ = single.reset()
                else:  # the final stack now, the new episode's first stack at the next step
                    assert np.array_equal(v_obs[0], s_obs) and (v_term[0] or v_trunc[0])
                    v_obs, *_ = vec.step(np.array([a]))
                    s_obs, _ = single.reset()
            assert np.array_equal(v_obs[0], s_obs), (mode, t)
        assert resets >= 2
        vec.close()
        single.close()


def test_ale_vector_steps_with_final_observations():
    cfg = wiring.load(HOUR, ["env.num_envs=2", "env.max_episode_frames=400"])
    stepper = envs.VectorStepper(envs.make_vector_env(cfg.env, 2))
    assert type(stepper.envs.unwrapped).__name__ == "AtariVectorEnv"
    obs = stepper.reset(seed=0)
    size = cfg.env.screen_size
    assert obs.shape == (2, 4, size, size) and obs.dtype == np.uint8
    ends = 0
    for _ in range(120):  # 400 frames = 100 agent steps: every episode is truncated once
        stepper.send(np.zeros(2, dtype=np.int64))
        st = stepper.recv()
        if st.dones.any():
            ends += int(st.dones.sum())
            i = int(np.flatnonzero(st.dones)[0])
            assert not np.array_equal(st.next_obs[i], st.obs[i])  # the last frame, not the new episode's
    assert ends == 2
    stepper.close()


def test_ale_vector_refuses_other_games():
    cfg = wiring.load("configs/dqn_cartpole.yaml", ["env.backend=ale_vector"])
    with pytest.raises(UserError, match="ALE/ games only"):
        envs.make_vector_env(cfg.env, 2)


# ------------------------------------------------------------------ PQN


def test_q_lambda_returns_by_hand():
    r = torch.tensor([[1.0], [0.0], [2.0]])
    d = torch.tensor([[0.9], [0.9], [0.0]])  # the episode terminates after step 2
    ends = torch.tensor([[False], [False], [True]])
    q = torch.tensor([[10.0], [20.0], [30.0]])  # max Q of each next state
    lam = 0.5
    g2 = 2.0  # terminal: no bootstrap
    g1 = 0.0 + 0.9 * (0.5 * 20.0 + 0.5 * g2)
    g0 = 1.0 + 0.9 * (0.5 * 10.0 + 0.5 * g1)
    assert torch.allclose(q_lambda_returns(r, d, ends, q, lam), torch.tensor([[g0], [g1], [g2]]))
    # lambda 0 is one-step Q-learning; an episode end cuts the trace (no leak across episodes)
    assert torch.allclose(q_lambda_returns(r, d, ends, q, 0.0), r + d * q)
    ends_mid = torch.tensor([[True], [False], [True]])
    assert q_lambda_returns(r, d, ends_mid, q, 1.0)[0, 0] == pytest.approx(1.0 + 0.9 * 10.0)


def test_pqn_spreads_a_rollout_over_the_next_one():
    cfg = wiring.load("configs/pqn_cartpole.yaml", ["agent.rollout_steps=4", "agent.epochs=2", "agent.minibatches=3"])
    env = envs.make_env(cfg.env)
    agent = make_agent(cfg, envs.spec_of(cfg.env.id, env))
    from howsure.replay.batch import Batch

    rng = np.random.default_rng(0)
    n = cfg.env.num_envs

    def step():
        obs = rng.normal(size=(n, 4)).astype(np.float32)
        return Batch.from_numpy(obs, rng.integers(0, 2, n), np.ones(n, np.float32), obs, np.zeros(n, bool),
                                0.99, ends=np.zeros(n, bool))

    for _ in range(4):
        assert agent.update(step()) == {}
    assert len(agent._queue) == 6 and agent.updates == 0  # 2 epochs x 3 minibatches, none learned yet
    done = []
    for i in range(4):  # as the loop does: learn while the envs step, then record the step
        done.append(agent.learn_while_stepping())
        assert 0 < agent.updates < 6 or i == 3
        if i < 3:
            agent.update(step())
    assert agent.updates == 6 and not agent._queue  # all of it before the next rollout is full
    assert all("losses/td_loss" in m for m in done)


def test_pqn_learning_rate_decays_linearly_with_the_steps_it_has_seen():
    cfg = wiring.load("configs/pqn_cartpole.yaml", ["agent.lr=0.001", "agent.lr_decay_steps=640", "agent.lr_end=0.0001",
                                                    "agent.rollout_steps=4"])
    env = envs.make_env(cfg.env)
    agent = make_agent(cfg, envs.spec_of(cfg.env.id, env))
    from howsure.replay.batch import Batch

    n = cfg.env.num_envs  # 16 transitions a vector step
    obs = np.zeros((n, 4), np.float32)
    step = Batch.from_numpy(obs, np.zeros(n, int), np.zeros(n, np.float32), obs, np.zeros(n, bool), 0.99)
    assert agent.learning_rate() == pytest.approx(0.001)
    for _ in range(20):  # 320 transitions: half way
        agent.update(step)
    assert agent.learning_rate() == pytest.approx(0.001 - 0.5 * 0.0009)
    agent.learn_while_stepping()
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(0.00055)
    for _ in range(40):
        agent.update(step)
    assert agent.learning_rate() == pytest.approx(0.0001)
    restored = make_agent(cfg, envs.spec_of(cfg.env.id, env))
    restored.load_state_dict(agent.state_dict())
    assert restored.steps_seen == 960 and restored.learning_rate() == pytest.approx(0.0001)


def test_pqn_learning_rate_can_decay_over_the_wall_clock_cap(tmp_path):
    cfg = wiring.load("configs/pqn_cartpole.yaml", ["agent.lr=0.001", "agent.lr_decay_steps=time_limit",
                                                    "agent.lr_end=0.0001", "time_limit_minutes=1"])
    agent = make_agent(cfg, envs.spec_of(cfg.env.id, envs.make_env(cfg.env)))
    assert agent.learning_rate() == pytest.approx(0.001)
    agent.note_time_used(0.25)
    assert agent.learning_rate() == pytest.approx(0.001 - 0.25 * 0.0009)
    agent.note_time_used(1.5)  # past the cap (the final checkpoint is written after it)
    assert agent.learning_rate() == pytest.approx(0.0001)
    with pytest.raises(UserError, match="time_limit_minutes"):
        wiring.load("configs/pqn_cartpole.yaml", ["agent.lr_decay_steps=time_limit"])
    # in a run: the loop tells the agent the time used, so the logged rate falls with the wall clock
    run_dir = tmp_path / "timed"
    res = run_cli("train.py", "--config", "configs/pqn_cartpole.yaml", f"run_dir={run_dir}", "total_steps=10000000",
                  "agent.lr_decay_steps=time_limit", "time_limit_minutes=0.1", "eval.every_steps=0",
                  "log.every_steps=2048", "--quiet")
    assert res.returncode == 0, res.stderr
    from howsure.logger import read_scalars

    rates = [v for _, v in read_scalars(run_dir)["charts/learning_rate"]]
    assert len(rates) >= 3 and all(a > b for a, b in zip(rates, rates[1:]))
    assert rates[-1] < 0.25 * cfg.agent.lr  # near the end of the cap, near lr_end = 0


def test_pqn_target_network_bootstraps_from_the_copy_of_its_last_refresh():
    cfg = wiring.load("configs/pqn_cartpole.yaml", ["agent.rollout_steps=2", "agent.epochs=1", "agent.minibatches=1",
                                                    "agent.target_every_rollouts=2", "agent.q_lambda=0",
                                                    "agent.lr=0.01"])
    env = envs.make_env(cfg.env)
    agent = make_agent(cfg, envs.spec_of(cfg.env.id, env))
    from howsure.replay.batch import Batch

    rng = np.random.default_rng(0)
    n = cfg.env.num_envs
    batches = []
    for _ in range(6):
        obs, nxt = rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 4)).astype(np.float32)
        batches.append(Batch.from_numpy(obs, rng.integers(0, 2, n), np.ones(n, np.float32), nxt,
                                        np.zeros(n, bool), 0.9, ends=np.zeros(n, bool)))

    def one_step_targets(net, rollout):  # lambda 0: r + gamma * max_a net(s', a)
        with torch.no_grad():
            return torch.cat([b.rewards + 0.9 * net(b.next_obs).max(dim=1).values for b in rollout])

    def rollout(i):
        for b in batches[2 * i:2 * i + 2]:
            agent.learn_while_stepping()
            agent.update(b)
    rollout(0)  # rollout 0: the copy is refreshed, and the targets come from it (= the online net)
    snapshot = copy.deepcopy(agent.q)
    assert torch.allclose(agent._train["returns"], one_step_targets(snapshot, batches[0:2]))
    rollout(1)  # rollout 1: the online net has learned since, the targets still come from the copy
    assert agent.updates > 0
    assert torch.allclose(agent._train["returns"], one_step_targets(snapshot, batches[2:4]))
    assert not torch.allclose(agent._train["returns"], one_step_targets(agent.q, batches[2:4]))
    rollout(2)  # rollout 2: refreshed again
    assert torch.allclose(agent._train["returns"], one_step_targets(agent.q, batches[4:6]))
    restored = make_agent(cfg, envs.spec_of(cfg.env.id, env))
    restored.load_state_dict(agent.state_dict())
    assert restored.rollouts == 3
    for a, b in zip(restored.q_target.parameters(), agent.q_target.parameters()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_pqn_learns_cartpole(tmp_path):
    run_dir = tmp_path / "pqn"
    res = run_cli("train.py", "--config", "configs/pqn_cartpole.yaml", f"run_dir={run_dir}", "eval.stop_return=300",
                  "total_steps=40000", "--quiet")
    assert res.returncode == 0, res.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_eval_return"] >= 300, summary  # random play scores about 20


# ------------------------------------------------------------------ the loop on the hour preset


@pytest.mark.atari
def test_hour_preset_trains_exports_and_plays(tmp_path):
    run_dir = tmp_path / "pong"
    res = run_cli("train.py", "--config", HOUR, f"run_dir={run_dir}", "total_steps=3000", "env.num_envs=8",
                  "agent.rollout_steps=8", "eval.every_steps=2000", "eval.episodes=1", "eval.num_envs=1",
                  "env.max_episode_frames=800", "time_limit_minutes=5", "--quiet")
    assert res.returncode == 0, res.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["step"] >= 3000 and summary["stopped_at_time_limit_step"] is None
    # the export: config + weights only, and the same greedy actions as the run's checkpoint
    out = tmp_path / "export"
    res = run_cli("howsure/export.py", str(run_dir), str(out))
    assert res.returncode == 0 and "exported" in res.stdout, res.stderr
    from howsure.evaluation import load_run

    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "model.safetensors"]
    _, from_run, _ = load_run(str(run_dir))
    _, from_export, meta = load_run(str(out))
    assert meta["env_id"] == "ALE/Pong-v5" and meta["source_step"] == summary["step"]
    size = from_run.spec.obs_shape[-1]
    obs = np.random.default_rng(3).integers(0, 256, (64, 4, size, size), dtype=np.uint8)
    assert np.array_equal(from_run.greedy(obs), from_export.greedy(obs))
    # exploring too: evaluate.py draws from its --seed, not from the training RNG a checkpoint
    # carries, so the export and the checkpoint play the same games
    from_run.reseed(9)
    from_export.reseed(9)
    assert np.array_equal(from_run.act(obs, 0, epsilon=0.5), from_export.act(obs, 0, epsilon=0.5))
    # evaluate.py plays the export like a run directory, and its video runs at the game's speed
    res = run_cli("evaluate.py", str(out), "--episodes", "1", "--seed", "5", "--video", str(tmp_path / "v"),
                  "--json", str(tmp_path / "e.json"), "--gif", str(tmp_path / "pong.gif"), "env.max_episode_frames=400")
    assert res.returncode == 0, res.stderr
    played = json.loads((tmp_path / "e.json").read_text())
    assert played["episodes"] == 1
    import imageio.v2 as imageio
    import imageio.v3 as iio

    (video,) = sorted((tmp_path / "v").glob("*.mp4"))
    assert imageio.get_reader(video).get_meta_data()["fps"] == pytest.approx(15.0)
    # the GIF: the full-size colour screen (160 wide), the start and every step the agent took,
    # 70 ms each: the GIF delay nearest to the game's 15 steps per second
    gif = iio.imread(tmp_path / "pong.gif", index=None)
    assert gif.shape[1:] == (210, 160, 3) and 80 <= played["lengths"][0] <= 100  # 400 frames, no-ops first
    shown_ms = sum(iio.immeta(tmp_path / "pong.gif", index=i)["duration"] for i in range(len(gif)))
    assert shown_ms == 70 * (played["lengths"][0] + 1)


def test_time_limit_stops_training_with_a_final_checkpoint(tmp_path):
    run_dir = tmp_path / "cp"
    res = run_cli("train.py", "--config", "configs/dqn_cartpole.yaml", f"run_dir={run_dir}", "total_steps=1000000",
                  "time_limit_minutes=0.05", "eval.every_steps=0", "--quiet")
    assert res.returncode == 0, res.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 < summary["step"] < 1_000_000 and summary["stopped_at_time_limit_step"] == summary["step"]
    assert 3.0 <= summary["wall_seconds"] < 30
    assert (run_dir / "checkpoints" / "final.pt").is_file()


def test_export_refuses_malformed_folders(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "config.yaml").write_text("agent: {name: dqn}\n")
    (tmp_path / "e" / "model.safetensors").write_bytes(b"not a safetensors file")
    res = run_in_process("evaluate.py", str(tmp_path / "e"), "--episodes", "1")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "model.safetensors" in res.stderr and len(res.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ ids and video speed


@pytest.mark.parametrize("raw, ale", [("PongNoFrameskip-v4", "ALE/Pong-v5"), ("Breakout-v4", "ALE/Breakout-v5")])
def test_raw_ale_ids_are_refused_with_the_ale_id(raw, ale, tmp_path):
    res = run_in_process("train.py", "--config", "configs/dqn_pong.yaml", f"env.id={raw}", f"run_dir={tmp_path / 'r'}")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"env.id={ale}" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_atari_videos_play_at_the_games_speed():
    from howsure.evaluation import video_fps

    assert video_fps(wiring.load("configs/dqn_pong.yaml")) == 15.0
    assert video_fps(wiring.load("configs/dqn_pong.yaml", ["env.frame_skip=2"])) == 30.0


def test_shipped_pong_agent_loads_and_wins_points():
    """pretrained/pong plays from the export alone and is ahead after the first 8,000 frames."""
    from howsure.evaluation import evaluate_agent, load_run, make_eval_envs

    cfg, agent, meta = load_run("pretrained/pong", ["env.max_episode_frames=8000"])
    assert meta["env_id"] == "ALE/Pong-v5" and cfg.agent.name == "pqn"
    envs = make_eval_envs(cfg, num_envs=1)
    try:
        (episode,) = evaluate_agent(agent, envs, 1, 0.01, seed=900_000_000, step=0, gamma=0.99)
    finally:
        envs.close()
    assert episode.episodic_return > 0, episode
