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
