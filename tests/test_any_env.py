"""Environments a user brings: gymnasium's module:EnvName ids and a package's registration function."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import train
from tests.conftest import run_cli

SHORT = ["--config", "configs/dqn_cartpole.yaml", "total_steps=300", "agent.learning_starts_steps=100",
         "eval.every_steps=300", "eval.episodes=2", "eval.num_envs=2", "checkpoint_replay=false", "--quiet"]


@pytest.mark.parametrize("env_args", [
    ["env.id=tests.thirdparty_envs:HowsureCorridor-v0"],
    ["env.id=HowsureCorridorLong-v0", "env.register=tests.thirdparty_envs:register_all"],
])
def test_third_party_env_trains_and_evaluates_from_the_run_alone(tmp_path, env_args):
    run = tmp_path / "run"
    assert train.main([*SHORT, f"run_dir={run}", *env_args]) == 0
    out = tmp_path / "eval.json"
    # a fresh process rebuilds the env from the run's config.yaml: it imports or registers again
    res = run_cli("evaluate.py", str(run), "--episodes", "2", "--json", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(json.loads(out.read_text())["returns"]) == 2
    assert train.main(["--resume", str(run), "--quiet", "total_steps=400"]) == 0


@pytest.mark.parametrize("env_args, needles", [
    (["env.id=no_such_package.envs:Thing-v0"], ["'no_such_package.envs'", "pip install no-such-package"]),
    (["env.id=tests.thirdparty_envs:Missing-v0"], ["registers no env 'Missing-v0'"]),
    (["env.id=CartPole-v1", "env.register=no_such_package:register"], ["'no_such_package'", "pip install"]),
    (["env.id=CartPole-v1", "env.register=tests.thirdparty_envs:nothing"], ["no function 'nothing'"]),
    (["env.id=CartPole-v1", "env.register=just_a_name"], ["package.module:function"]),
])
def test_third_party_import_failures_are_one_line(tmp_path, capsys, env_args, needles):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        train.main([*SHORT, f"run_dir={tmp_path}/run", *env_args])
    assert exit_.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and all(n in lines[0] for n in needles), lines
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- small and odd images

@pytest.mark.parametrize("shape, dtype, expected", [
    ((7, 7, 3), np.uint8, "grid_cnn"),      # MiniGrid's view: channels last
    ((3, 10, 10), np.float32, "grid_cnn"),  # channels first, float
    ((10, 10), np.bool_, "grid_cnn"),       # one channel, bool
    ((4, 84, 84), np.uint8, "nature_cnn"),  # Atari frames
    ((84, 84, 3), np.uint8, "nature_cnn"),  # a channels-last screen
    ((4,), np.float32, "mlp"),
])
def test_auto_encoder_by_observation(shape, dtype, expected):
    from gymnasium import spaces

    from encoders import make_encoder, resolve_name
    from envs import EnvSpec
    from howsure import config

    spec = EnvSpec("Any-v0", spaces.Box(0, 1, shape, dtype), 3)
    assert resolve_name("auto", spec) == expected
    encoder = make_encoder(config.load(None).encoder, spec)
    obs = torch.as_tensor(np.random.default_rng(0).integers(0, 2, (5, *shape)).astype(dtype))
    assert encoder(obs).shape == (5, encoder.out_features)


@pytest.mark.parametrize("agent", ["dqn", "bayes_dqn", "boot_dqn", "pqn", "lstm"])
def test_grid_cnn_composes_with_every_deep_agent(agent):
    from gymnasium import spaces

    from agents import make_agent
    from envs import EnvSpec
    from howsure import config

    overrides = ["env.id=CartPole-v1"]  # the id only names the run; the spec below is what counts
    overrides += ["agent.name=dqn", "encoder.name=lstm", "encoder.lstm.embed=auto", "replay.kind=sequence"] \
        if agent == "lstm" else [f"agent.name={agent}"]
    cfg = config.load(None, overrides)
    spec = EnvSpec("Any-v0", spaces.Box(0, 1, (7, 7, 3), np.uint8), 3)
    model = make_agent(cfg, spec)
    obs = np.random.default_rng(0).integers(0, 2, (2, 7, 7, 3)).astype(np.uint8)
    model.begin_episode(np.arange(2))
    assert model.act(obs, 0).shape == (2,)
    assert any("grid_cnn" in type(m).__module__ for m in model.modules()["q"].modules())


def test_small_image_env_trains_with_auto_encoder(tmp_path):
    run = tmp_path / "run"
    assert train.main([*SHORT, f"run_dir={run}", "env.id=tests.thirdparty_envs:HowsureGridCorridor-v0",
                       "encoder.name=auto"]) == 0
    weights = torch.load(run / "checkpoints" / "final.pt", weights_only=True)["agent"]["q"]
    assert weights["encoder.net.0.weight"].shape == (16, 1, 3, 3)  # grid_cnn's 3x3 conv on one channel
