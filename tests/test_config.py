import dataclasses

import pytest

from howsure import config
from howsure.errors import UserError


def test_preset_overrides_and_types():
    cfg = config.load("configs/dqn_cartpole.yaml", ["agent.lr=1e-4", "seed=3", "env.id=Acrobot-v1",
                                                     "encoder.mlp.hidden_sizes=[32,32]", "eval.stop_return=null"])
    assert cfg.agent.lr == pytest.approx(1e-4) and isinstance(cfg.agent.lr, float)
    assert cfg.seed == 3 and cfg.env.id == "Acrobot-v1"
    assert cfg.encoder.mlp.hidden_sizes == (32, 32)
    assert cfg.eval.stop_return is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 4


def test_round_trip_through_yaml():
    cfg = config.load("configs/dqn_cartpole.yaml", ["agent.double_dqn=false"])
    assert config.from_yaml(config.to_yaml(cfg)) == cfg


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
        config.load("configs/dqn_cartpole.yaml", [override])
    assert message in str(err.value)


def test_misspelt_key_suggests_the_right_one():
    with pytest.raises(UserError, match=r"did you mean 'agent.lr'"):
        config.load("configs/dqn_cartpole.yaml", ["agent.lrr=0.1"])


def test_every_preset_loads():
    from pathlib import Path

    for path in sorted(Path("configs").glob("*.yaml")):
        cfg = config.load(path)
        assert cfg.agent is not None, path


def test_presets_by_name(tmp_path, monkeypatch):
    """--config takes a shipped preset's name from any folder; a misspelt one is named with a hint."""
    from pathlib import Path

    by_path = config.load("configs/dqn_pong_hour.yaml")
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    assert config.load("dqn_pong_hour") == config.load("dqn_pong_hour.yaml") == by_path
    assert "dqn_cartpole" in config.preset_names() and "__init__" not in config.preset_names()
    with pytest.raises(UserError, match="no such preset .did you mean 'dqn_cartpole'"):
        config.load("dqn_cartpol")
    with pytest.raises(UserError, match="not found"):
        config.load(str(Path("elsewhere") / "mine.yaml"))
    with pytest.raises(UserError, match="is a folder"):
        config.load(str(tmp_path))


def test_choice_spelled_like_a_yaml_bool():
    cfg = config.load("configs/bayes_dqn_cartpole.yaml", ["agent.target_dropout=off"])
    assert cfg.agent.target_dropout == "off"
    with pytest.raises(UserError, match="'agent.target_dropout' must be one of"):
        config.load("configs/bayes_dqn_cartpole.yaml", ["agent.target_dropout=yes"])
