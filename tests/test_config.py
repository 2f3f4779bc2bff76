import dataclasses

import pytest
import yaml

from howsure import config, wiring
from howsure.errors import UserError


def test_preset_overrides_and_types():
    cfg = wiring.load("configs/dqn_cartpole.yaml", ["agent.lr=1e-4", "seed=3", "env.id=Acrobot-v1",
                                                     "encoder.mlp.hidden_sizes=[32,32]", "eval.stop_return=null"])
    assert cfg.agent.lr == pytest.approx(1e-4) and isinstance(cfg.agent.lr, float)
    assert cfg.seed == 3 and cfg.env.id == "Acrobot-v1"
    assert cfg.encoder.mlp.hidden_sizes == (32, 32)
    assert cfg.eval.stop_return is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 4


def test_round_trip_through_yaml():
    cfg = wiring.load("configs/dqn_cartpole.yaml", ["agent.double_dqn=false"])
    assert wiring.from_yaml(config.to_yaml(cfg)) == cfg


@pytest.mark.parametrize("override, message", [
    ("agent.lerning_rate=0.1", "unknown config key 'agent.lerning_rate'"),
    ("agent.lr=fast", "config key 'agent.lr' must be float"),
    ("agent.optimizer=adamw", "'agent.optimizer' must be one of 'adam', 'rmsprop', 'sgd'"),
    ("agent.name=dqm", "unknown agent 'dqm' (did you mean 'dqn'?)"),
    ("seed=1.5", "config key 'seed' must be int"),
    ("envv.id=x", "unknown config key 'envv' (did you mean 'env'?)"),
    ("encoder.name=cnn", "unknown encoder 'cnn'"),
    ("agent.double_dqn=maybe", "'agent.double_dqn' must be bool"),
    ("nokey", "is not key=value"),
])
def test_bad_config_names_the_key(override, message):
    with pytest.raises(UserError) as err:
        wiring.load("configs/dqn_cartpole.yaml", [override])
    assert message in str(err.value)


def test_misspelt_key_suggests_the_right_one():
    with pytest.raises(UserError, match=r"did you mean 'agent.lr'"):
        wiring.load("configs/dqn_cartpole.yaml", ["agent.lrr=0.1"])


def test_every_preset_loads():
    from pathlib import Path

    for path in sorted(Path("configs").glob("*.yaml")):
        cfg = wiring.load(path)
        assert cfg.agent is not None, path


def test_presets_by_name(tmp_path, monkeypatch):
    """--config takes a shipped preset's name from any folder; a misspelt one is named with a hint."""
    from pathlib import Path

    by_path = wiring.load("configs/dqn_pong_hour.yaml")
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    assert wiring.load("dqn_pong_hour") == wiring.load("dqn_pong_hour.yaml") == by_path
    assert "dqn_cartpole" in config.preset_names() and "__init__" not in config.preset_names()
    with pytest.raises(UserError, match="no such preset .did you mean 'dqn_cartpole'"):
        wiring.load("dqn_cartpol")
    with pytest.raises(UserError, match="not found"):
        wiring.load(str(Path("elsewhere") / "mine.yaml"))
    with pytest.raises(UserError, match="is a folder"):
        wiring.load(str(tmp_path))


def test_choice_spelled_like_a_yaml_bool():
    cfg = wiring.load("configs/bayes_dqn_cartpole.yaml", ["agent.target_dropout=off"])
    assert cfg.agent.target_dropout == "off"
    with pytest.raises(UserError, match="'agent.target_dropout' must be one of"):
        wiring.load("configs/bayes_dqn_cartpole.yaml", ["agent.target_dropout=yes"])


def test_replay_kinds_have_their_own_sub_sections():
    cfg = wiring.load("configs/drqn_cartpole_novel.yaml",
                      ["replay.sequence.burn_in_steps=2", "replay.priority.alpha=0.3"])
    assert cfg.replay.kind == "sequence" and cfg.replay.sequence.burn_in_steps == 2
    assert cfg.replay.sequence.length_steps == 8 and cfg.replay.priority.alpha == 0.3
    with pytest.raises(UserError, match=r"unknown config key 'replay.sequence.burn_in'"):
        wiring.load(None, ["replay.sequence.burn_in=2"])
    with pytest.raises(UserError, match=r"'replay.sequence.length_steps' must be an integer >= 1"):
        wiring.load(None, ["replay.sequence.length_steps=0"])


def test_flat_replay_keys_of_earlier_versions():
    """A user's file gets the new name; a config howsure saved earlier (checkpoints, exports) still loads."""
    with pytest.raises(UserError, match=r"'replay.burn_in_steps' is now 'replay.sequence.burn_in_steps'"):
        wiring.load(None, ["replay.burn_in_steps=3"])
    saved = config.to_dict(wiring.load(None))
    saved["replay"] = {"kind": "atari", "capacity_steps": 1000, "priority_alpha": 0.5, "compress": True,
                       "sequence_length_steps": 7, "stored_state": False}
    cfg = wiring.from_yaml(yaml.safe_dump(saved))
    assert cfg.replay.priority.alpha == 0.5 and cfg.replay.atari.compress is True
    assert cfg.replay.sequence.length_steps == 7 and cfg.replay.sequence.stored_state is False
    shipped = wiring.from_dict(config.read_yaml("pretrained/pong/config.yaml"), saved=True)  # flat keys
    assert shipped.replay.priority.alpha == 0.6 and shipped.replay.sequence.length_steps == 16


# --------------------------------------------------------------------------- sections, encoders, sizes, env.kwargs


@pytest.mark.parametrize("override, needles", [
    ("agent=foo", ["config section 'agent' must be a mapping", "agent.name=foo"]),
    ("agent=[dqn]", ["config section 'agent' must be a mapping", "got ['dqn']", "agent.KEY=VALUE"]),
    ("agent=", ["config section 'agent' must be a mapping", "agent.KEY=VALUE"]),
    ("env=CartPole-v1", ["config section 'env' must be a mapping", "env.KEY=VALUE"]),
    ("encoder=mlp", ["config section 'encoder' must be a mapping", "encoder.name=mlp"]),
    ("replay=uniform", ["config section 'replay' must be a mapping", "replay.kind=uniform"]),
    ("eval=3", ["config section 'eval' must be a mapping", "eval.KEY=VALUE"]),
    ("log=[1]", ["config section 'log' must be a mapping", "log.KEY=VALUE"]),
    ("distributed=4", ["config section 'distributed' must be a mapping", "distributed.KEY=VALUE"]),
    ("encoder.mlp=3", ["config section 'encoder.mlp' must be a mapping"]),
    ("replay.priority=x", ["config section 'replay.priority' must be a mapping"]),
])
def test_a_section_given_as_a_value_names_the_section(override, needles):
    with pytest.raises(UserError) as err:
        wiring.load("configs/dqn_cartpole.yaml", [override])
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))


@pytest.mark.parametrize("text, needle", [("agent: dqn\n", "agent.name=dqn"), ("agent: [dqn]\n", "got ['dqn']"),
                                          ("env: [CartPole-v1]\n", "config section 'env' must be a mapping")])
def test_a_section_given_as_a_value_in_a_yaml_file(tmp_path, text, needle):
    from tests.conftest import assert_one_line, run_in_process

    path = tmp_path / "mine.yaml"
    path.write_text(text)
    res = run_in_process("train.py", "--config", str(path), "--quiet", f"run_dir={tmp_path}/r")
    assert_one_line(res, "must be a mapping", needle)
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="the saved config"):  # not a mapping at all
        wiring.from_yaml("- 1\n")
    with pytest.raises(UserError, match="config section '<top>' must be a mapping"):
        wiring.from_dict(["agent"])  # type: ignore[arg-type]


CARTPOLE = ["--config", "configs/dqn_cartpole.yaml", "--quiet", "total_steps=300", "eval.every_steps=0"]


@pytest.mark.parametrize("overrides, needles", [
    (["encoder.name=nature_cnn"], ["encoder.name=nature_cnn needs image observations",
                                   "'CartPole-v1' gives (4,) float32", "use encoder.name=mlp or auto"]),
    (["encoder.name=grid_cnn"], ["encoder.name=grid_cnn needs image observations", "'CartPole-v1' gives (4,)"]),
    (["encoder.name=nips_cnn"], ["encoder.name=nips_cnn needs image observations", "'CartPole-v1' gives (4,)"]),
    (["encoder.name=lstm", "replay.kind=sequence", "encoder.lstm.embed=nature_cnn"],
     ["encoder.lstm.embed=nature_cnn needs image observations", "encoder.lstm.embed=mlp or auto"]),
    (["encoder.name=lstm", "replay.kind=sequence", "encoder.lstm.embed=parts"],
     ["encoder.lstm.embed=parts", "Dict or Tuple", "encoder.lstm.embed=auto"]),
])
def test_an_image_encoder_on_vector_observations(tmp_path, overrides, needles):
    from tests.conftest import assert_one_line, run_in_process

    res = run_in_process("train.py", *CARTPOLE, f"run_dir={tmp_path}/r", *overrides)
    assert_one_line(res, *needles)
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_image_encoders_name_what_they_need():
    import gymnasium as gym
    import numpy as np
    from howsure.encoders.grid_cnn import GridCNNConfig, GridCNNEncoder
    from howsure.encoders.nature_cnn import NatureCNNConfig, NatureCNNEncoder

    from howsure import envs

    lake = envs.EnvSpec("FrozenLake-v1", gym.spaces.Discrete(16), 4)
    with pytest.raises(UserError, match="'FrozenLake-v1' gives one of 16 discrete states"):
        NatureCNNEncoder(NatureCNNConfig(), lake)
    small = envs.EnvSpec("grid", gym.spaces.Box(0, 255, (3, 10, 10), np.uint8), 4)
    with pytest.raises(UserError, match=r"at least 36x36 pixels; 'grid' gives \(3, 10, 10\) uint8 \(10x10\)"):
        NatureCNNEncoder(NatureCNNConfig(), small)
    assert GridCNNEncoder(GridCNNConfig(), small).out_features == 128
    board = envs.EnvSpec("board", gym.spaces.Box(0.0, 1.0, (10, 10), np.float32), 4)  # (H, W): one channel
    assert GridCNNEncoder(GridCNNConfig(channels=4), board).out_features == 128


@pytest.mark.parametrize("preset, override, message", [
    ("dqn_minigrid", "encoder.parts.grid_channels=0", "'encoder.parts.grid_channels' must be an integer >= 1"),
    ("dqn_minigrid", "encoder.parts.image_features=-1", "'encoder.parts.image_features' must be an integer >= 1"),
    ("dqn_minigrid", "encoder.parts.hidden_sizes=[0]", "'encoder.parts.hidden_sizes' must be a list whose every"),
    ("dqn_cartpole", "encoder.grid_cnn.channels=0", "'encoder.grid_cnn.channels' must be an integer >= 1"),
    ("dqn_cartpole", "encoder.grid_cnn.features=0", "'encoder.grid_cnn.features' must be an integer >= 1"),
    ("dqn_cartpole", "encoder.grid_cnn.scale=0", "'encoder.grid_cnn.scale' must be a finite number > 0"),
    ("dqn_cartpole", "eval.video_every_evals=-1", "'eval.video_every_evals' must be an integer >= 0"),
    ("dqn_cartpole", "encoder.lstm.chrono_init_steps=2", "'encoder.lstm.chrono_init_steps' must be 0 (off) or"),
])
def test_encoder_and_eval_sizes_are_range_checked(preset, override, message):
    with pytest.raises(UserError) as err:
        wiring.load(preset, [override])
    assert message in str(err.value)
    assert wiring.load(preset, ["encoder.parts.hidden_sizes=[]", "eval.video_every_evals=0",
                                "encoder.lstm.chrono_init_steps=3"]).encoder.parts.hidden_sizes == ()


# int and float fields where any finite number means something
FREE_NUMBERS = {"agent.initial_q", "eval.stop_return"}


def test_every_numeric_config_key_has_a_range_rule():
    """Every int or float field of the schema (every agent's, encoder's and replay kind's included)
    has a row in config.RULES, or is listed in FREE_NUMBERS above."""
    import typing

    from howsure import agents, encoders, replay

    def numeric(cls, prefix):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                yield from numeric(tp, f"{prefix}{f.name}.")
                continue
            args = typing.get_args(tp) or (tp,)
            inner = [a for arg in args for a in (typing.get_args(arg) or (arg,))]  # tuple[int, ...]
            if any(a in (int, float) for a in inner):
                yield prefix + f.name

    keys = set(numeric(config.Config, ""))
    keys |= {k for n in agents.AGENTS for k in numeric(agents.AGENTS.get(n).Config, "agent.")}
    keys |= set(numeric(encoders.encoder_config_class(), "encoder."))
    keys |= set(numeric(replay.replay_config_class(), "replay."))
    assert "encoder.parts.hidden_sizes" in keys and "agent.lr" in keys
    assert sorted(keys - set(config.RULES) - FREE_NUMBERS) == []


FROZENLAKE = ["--config", "configs/tabular_frozenlake.yaml", "--quiet", "total_steps=200", "eval.every_steps=0"]


def test_env_kwargs_an_env_refuses(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    res = run_in_process("train.py", *FROZENLAKE, f"run_dir={tmp_path}/r", "env.kwargs.map_name=9x9")
    assert_one_line(res, "env 'FrozenLake-v1' rejected its settings (KeyError: '9x9')",
                    "check env.kwargs (now {is_slippery: true, map_name: 9x9})", "env.kwargs=null")
    res = run_in_process("train.py", *FROZENLAKE, f"run_dir={tmp_path}/s", "env.kwargs.colour=red")
    assert_one_line(res, "unexpected keyword argument 'colour')", "env.kwargs")
    assert "raised from the environment creator" not in res.stderr


def test_env_kwargs_an_env_asserts_on():
    import gymnasium as gym

    from howsure import envs

    def corridor(length: int = 3, **_):
        assert length > 0, "length must be positive"
        return gym.make("CartPole-v1")

    if "howsure-test/AssertingCorridor-v0" not in gym.registry:
        gym.register("howsure-test/AssertingCorridor-v0", entry_point=corridor)
    cfg = wiring.load(None, ["env.id=howsure-test/AssertingCorridor-v0", "env.kwargs.length=0"])
    with pytest.raises(UserError, match=r"rejected its settings \(AssertionError: length must be positive\); "
                                        r"check env.kwargs \(now \{length: 0\}\)"):
        envs.make_env(cfg.env)


def test_env_kwargs_null_or_empty_drops_a_presets_kwargs(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    preset = "configs/tabular_frozenlake.yaml"
    assert wiring.load(preset).env.kwargs == {"is_slippery": True, "map_name": "4x4"}
    assert wiring.load(preset, ["env.kwargs.map_name=8x8"]).env.kwargs == {"is_slippery": True, "map_name": "8x8"}
    assert wiring.load(preset, ["env.kwargs={map_name: 8x8}"]).env.kwargs["is_slippery"] is True
    for cleared in ("env.kwargs=null", "env.kwargs={}", "env.kwargs=none"):
        assert wiring.load(preset, [cleared]).env.kwargs == {}
    assert wiring.load(preset, ["env.kwargs=null", "env.kwargs.map_name=8x8"]).env.kwargs == {"map_name": "8x8"}
    with pytest.raises(UserError, match=r"'env.kwargs' must be a mapping such as \{name: value\} or null"):
        wiring.load(preset, ["env.kwargs=3"])
    # the preset's FrozenLake kwargs would be refused by CartPole; dropped, the next check speaks
    res = run_in_process("train.py", *FROZENLAKE, f"run_dir={tmp_path}/r", "env.id=CartPole-v1", "env.kwargs=null")
    assert_one_line(res, "tabular_q needs a discrete observation space", "CartPole-v1")


@pytest.mark.parametrize("preset, override, needle", [
    ("configs/dqn_cartpole.yaml", "encoder.mlp.activation=gelu", "'encoder.mlp.activation' must be one of"),
    ("configs/drqn_cartpole_novel.yaml", "encoder.lstm.embed=foo", "'encoder.lstm.embed' must be one of"),
])
def test_encoder_choices_are_checked_when_the_config_loads(preset, override, needle):
    with pytest.raises(UserError, match=needle):
        wiring.load(preset, [override])


def test_log_hparams_keeps_a_key_at_its_default_in_the_hparams_table():
    from howsure import dashboards

    plain = wiring.load("configs/dqn_cartpole.yaml", ["agent.gamma=0.99"])  # the schema's default
    listed = wiring.load("configs/dqn_cartpole.yaml", ["agent.gamma=0.99", "log.hparams=[agent.gamma]"])
    assert "agent.gamma" not in dashboards.hparams_of(plain, config.to_dict(plain))
    assert dashboards.hparams_of(listed, config.to_dict(listed))["agent.gamma"] == 0.99
    assert "log.hparams" not in dashboards.hparams_of(listed, config.to_dict(listed))
    with pytest.raises(UserError, match="log.hparams names 'agent.gama'"):
        wiring.load("configs/dqn_cartpole.yaml", ["log.hparams=[agent.gama]"])
