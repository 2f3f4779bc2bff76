"""Environments a user brings: gymnasium's module:EnvName ids and a package's registration function."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from howsure.cli import train
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
    from howsure.encoders import make_encoder, resolve_name
    from howsure.envs import EnvSpec

    from howsure import wiring

    spec = EnvSpec("Any-v0", spaces.Box(0, 1, shape, dtype), 3)
    assert resolve_name("auto", spec) == expected
    encoder = make_encoder(wiring.load(None).encoder, spec)
    obs = torch.as_tensor(np.random.default_rng(0).integers(0, 2, (5, *shape)).astype(dtype))
    assert encoder(obs).shape == (5, encoder.out_features)


@pytest.mark.parametrize("agent", ["dqn", "bayes_dqn", "boot_dqn", "pqn", "lstm"])
def test_grid_cnn_composes_with_every_deep_agent(agent):
    from gymnasium import spaces
    from howsure.agents import make_agent
    from howsure.envs import EnvSpec

    from howsure import wiring

    overrides = ["env.id=CartPole-v1"]  # the id only names the run; the spec below is what counts
    overrides += ["agent.name=dqn", "encoder.name=lstm", "encoder.lstm.embed=auto", "replay.kind=sequence"] \
        if agent == "lstm" else [f"agent.name={agent}"]
    cfg = wiring.load(None, overrides)
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


def test_dict_and_tuple_observations_pack_into_parts():
    from gymnasium import spaces
    from howsure.envs.parts import PackParts, layout_of, unpack

    from tests.thirdparty_envs import Signpost

    env = PackParts(Signpost(), "HowsureSignpost-v0")
    sign, view = env.parts  # gymnasium's Dict sorts its keys; the Text mission is left out
    assert (sign.kind, sign.offset, sign.n, sign.start) == ("discrete", 0, 2, 1)
    assert (view.kind, view.shape, view.offset, view.size) == ("image", (3, 5), 1, 15)
    assert env.observation_space.shape == (16,) and env.observation_space.dtype == np.uint8
    row, _ = env.reset(seed=3)
    raw = env.env._obs()
    assert np.array_equal(unpack(row, view), raw["view"]) and unpack(row, sign) == raw["sign"]
    assert row[0] == raw["sign"] - 1  # stored from the space's start
    # a Tuple with a float vector: the row is float32; nested names keep their path
    nested = spaces.Tuple((spaces.Box(-1.0, 1.0, (3,), np.float32),
                           spaces.Dict({"pos": spaces.Discrete(300)})))
    parts = layout_of(nested, "Any-v0")
    assert [(p.name, p.kind, p.offset, p.size) for p in parts] == [("0", "vector", 0, 3), ("1/pos", "discrete", 3, 1)]
    from howsure.envs.parts import row_dtype
    assert row_dtype(parts) == np.float32  # a float part, and a Discrete(300) that does not fit a byte


def test_a_space_no_encoder_takes_is_named():
    from gymnasium import spaces
    from howsure.envs.parts import layout_of

    from howsure.errors import UserError

    graph = spaces.Dict({"g": spaces.Graph(node_space=spaces.Discrete(3), edge_space=None)})
    with pytest.raises(UserError, match="part 'g' is a Graph space"):
        layout_of(graph, "Any-v0")
    with pytest.raises(UserError, match="no part an encoder takes"):
        layout_of(spaces.Dict({"m": spaces.Text(5)}), "Any-v0")


@pytest.mark.parametrize("agent", ["dqn", "bayes_dqn", "boot_dqn", "pqn", "lstm"])
def test_parts_encoder_composes_with_every_deep_agent(agent):
    from howsure.agents import make_agent
    from howsure.envs import make_env, spec_of

    from howsure import wiring

    overrides = ["env.id=tests.thirdparty_envs:HowsureSignpost-v0"]
    overrides += ["agent.name=dqn", "encoder.name=lstm", "replay.kind=sequence"] \
        if agent == "lstm" else [f"agent.name={agent}"]
    cfg = wiring.load(None, overrides)
    env = make_env(cfg.env)
    spec = spec_of(cfg.env.id, env)
    model = make_agent(cfg, spec)
    obs = np.stack([env.reset(seed=s)[0] for s in range(2)])
    model.begin_episode(np.arange(2))
    assert model.act(obs, 0).shape == (2,)
    assert any(type(m).__name__ == "PartsEncoder" for m in model.modules()["q"].modules())


def test_an_image_encoder_on_dict_observations_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main([*SHORT, f"run_dir={tmp_path / 'run'}", "env.id=tests.thirdparty_envs:HowsureSignpost-v0",
                    "encoder.name=nature_cnn"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "encoder.name=auto" in err


def test_dqn_reads_every_part_of_a_dict_observation(tmp_path):
    """The sign (a Discrete part) decides which exit pays: evaluated 1.0 needs it, ignoring it gives 0."""
    run = tmp_path / "run"
    assert train.main(["--config", "configs/dqn_cartpole.yaml", f"run_dir={run}", "--quiet",
                       "env.id=tests.thirdparty_envs:HowsureSignpost-v0", "total_steps=4000",
                       "agent.learning_starts_steps=200", "agent.epsilon_decay_steps=1500", "eval.every_steps=1000",
                       "eval.episodes=20", "eval.num_envs=4", "eval.stop_return=1.0", "checkpoint_replay=false",
                       "encoder.name=auto", "encoder.parts.hidden_sizes=[64]"]) == 0
    weights = torch.load(run / "checkpoints" / "final.pt", weights_only=True)["agent"]["q"]
    assert "encoder.images.1.net.0.weight" in weights  # the parts encoder: a CNN on the view
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_eval_return"] == 1.0, summary
    # evaluate.py rebuilds the Dict env and the parts encoder from the run alone
    res = run_cli("evaluate.py", str(run), "--episodes", "10", "--json", str(tmp_path / "ev.json"))
    assert res.returncode == 0, res.stderr[-1500:]
    assert json.loads((tmp_path / "ev.json").read_text())["mean_return"] == 1.0


def test_minigrid_preset_packs_the_view_and_direction(tmp_path):
    pytest.importorskip("minigrid")
    from howsure.envs import make_env, spec_of

    from howsure import wiring

    cfg = wiring.load("configs/dqn_minigrid.yaml")
    spec = spec_of(cfg.env.id, make_env(cfg.env))
    assert [(p.name, p.kind, p.shape, p.n) for p in spec.parts] == [("direction", "discrete", (), 4),
                                                                    ("image", "image", (7, 7, 3), 0)]
    assert spec.obs_shape == (148,) and spec.obs_dtype == np.uint8
    run = tmp_path / "run"
    assert train.main(["--config", "configs/dqn_minigrid.yaml", f"run_dir={run}", "--quiet", "total_steps=300",
                       "agent.learning_starts_steps=100", "eval.every_steps=300", "eval.episodes=1",
                       "eval.num_envs=1", "checkpoint_replay=false"]) == 0
    weights = torch.load(run / "checkpoints" / "final.pt", weights_only=True)["agent"]["q"]
    assert weights["encoder.images.1.net.0.weight"].shape == (16, 3, 3, 3)  # the view's 3x3 conv, 3 channels


@pytest.mark.parametrize("env_id", ["HowsureSignpost-v0", "HowsureBoolCorridor-v0"])
@pytest.mark.parametrize("agent", ["dqn", "bayes_dqn", "lstm"])
def test_dict_and_bool_image_envs_train_with_every_kind_of_agent(tmp_path, env_id, agent):
    """A few thousand steps of a Dict env and a 10x10 channels-last bool-image env, for DQN,
    the dropout-Bayesian DQN and the LSTM encoder; each run's checkpoint holds the right encoder."""
    preset = "configs/bayes_dqn_cartpole.yaml" if agent == "bayes_dqn" else "configs/dqn_cartpole.yaml"
    extra = ["encoder.name=auto"]
    if agent == "lstm":  # 16 sequences of 16 steps per update keep the recurrent runs short
        extra = ["encoder.name=lstm", "replay.kind=sequence", "agent.batch_size=16", "encoder.lstm.embed_features=64"]
    run = tmp_path / "run"
    assert train.main(["--config", preset, f"run_dir={run}", "--quiet", f"env.id=tests.thirdparty_envs:{env_id}",
                       "total_steps=2000", "agent.learning_starts_steps=500", "agent.train_every_steps=4",
                       "eval.every_steps=1000",
                       "eval.episodes=4", "eval.num_envs=4", "eval.stop_return=null", "checkpoint_replay=false",
                       "torch_threads=1", *extra]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 2000 and summary["best_eval_return"] is not None
    from howsure.logger import read_scalars

    losses = [v for _, v in read_scalars(run)["losses/td_loss"]]
    assert losses and np.all(np.isfinite(losses))
    weights = torch.load(run / "checkpoints" / "final.pt", weights_only=True)["agent"]["q"]
    conv = [k for k in weights if k.endswith("net.0.weight") and weights[k].dim() == 4]
    if env_id == "HowsureBoolCorridor-v0":
        assert conv and weights[conv[0]].shape[1:] == (1, 3, 3)  # the grid CNN on the one bool channel
    else:
        assert any(".images." in k for k in weights)  # the parts encoder's CNN on the Dict's view
