"""Real Atari games through the real ROMs shipped with ale-py."""

import numpy as np
import pytest
from howsure.envs import make_env

from howsure import wiring


def test_pong_preprocessing_and_sticky_actions():
    cfg = wiring.load("configs/dqn_pong.yaml")
    env = make_env(cfg.env)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.action_space.n == 6
    ale = env.unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert np.array_equal(obs[0], obs[3])  # an episode's first stack repeats its first frame
    obs2, reward, *_ = env.step(0)
    assert np.array_equal(obs2[:3], obs[1:])
    env.close()


def test_switches_reach_the_emulator():
    cfg = wiring.load("configs/dqn_breakout.yaml", ["env.sticky_action_prob=0", "env.full_action_space=true"])
    env = make_env(cfg.env)
    env.reset(seed=0)
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    assert env.action_space.n == 18
    env.close()


def test_breakout_fires_on_reset():
    cfg = wiring.load("configs/dqn_breakout.yaml", ["env.noop_max=0"])
    env = make_env(cfg.env)
    obs, _ = env.reset(seed=0)
    # after FIRE the ball is in play: the next frames differ without any agent action
    frames = [env.step(0)[0][-1] for _ in range(10)]
    assert any(not np.array_equal(frames[0], f) for f in frames[1:])
    env.close()


@pytest.mark.atari
def test_pong_training_run_and_video(tmp_path):
    from tests.conftest import run_cli

    run_dir = tmp_path / "pong"
    res = run_cli("train.py", "--config", "configs/dqn_pong.yaml", f"run_dir={run_dir}", "total_steps=1000",
                  "replay.capacity_steps=5000", "agent.learning_starts_steps=500", "eval.every_steps=0",
                  "torch_threads=1", "--quiet")
    assert res.returncode == 0, res.stderr
    video_dir = tmp_path / "videos"
    res = run_cli("evaluate.py", str(run_dir), "--episodes", "1", "--video", str(video_dir),
                  "env.max_episode_frames=1600", "--json", str(tmp_path / "eval.json"))
    assert res.returncode == 0, res.stderr
    assert "sticky_action_prob=0.25" in res.stdout
    import json

    import imageio.v2 as imageio

    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["env_id"] == "ALE/Pong-v5" and len(report["returns"]) == 1
    assert set(report) >= {"env_id", "agent", "episodes", "returns", "mean_return", "std_return",
                           "discounted_returns"}
    (video,) = sorted(video_dir.glob("*.mp4"))
    reader = imageio.get_reader(video)
    frames = [f for f in reader]
    assert frames[0].shape == (210, 160, 3)  # the colour screen, not the 84x84 input
    # one frame per agent step: 1,600 emulator frames, less the no-op and FIRE frames of the reset
    assert 1600 // 4 - 40 <= len(frames) <= 1600 // 4 + 1
    assert np.std(frames[len(frames) // 2]) > 10  # a real picture
