"""Every bad input ends in one clear line on stderr and exit code 2, never a traceback.

Most checks call the entry points in this process (conftest.run_in_process: the same code, no
interpreter start-up); test_real_processes_print_one_line runs train.py and evaluate.py as a user
does, so nothing printed at start-up or at exit escapes the one-line rule."""

import pickle

import pytest
import torch

from tests.conftest import assert_one_line, run_cli, run_in_process

# one xdist worker runs this module, so its module-scoped run fixture trains once
pytestmark = pytest.mark.xdist_group("test_errors")

CARTPOLE = ["--config", "configs/dqn_cartpole.yaml", "total_steps=300", "eval.every_steps=0", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "ok"
    res = run_in_process("train.py", *CARTPOLE, f"run_dir={run_dir}")
    assert res.returncode == 0, res.stderr
    return run_dir


def test_real_processes_print_one_line(tmp_path):
    res = run_cli("train.py", *CARTPOLE, f"run_dir={tmp_path}/r", "env.id=CartPol-v1")
    assert_one_line(res, "unknown env id 'CartPol-v1'", "did you mean 'CartPole-v1'")
    assert not (tmp_path / "r").exists()
    assert_one_line(run_cli("evaluate.py", str(tmp_path / "nothing.pt")), "not found")


@pytest.mark.parametrize("override, needles", [
    ("env.id=CartPol-v1", ["unknown env id 'CartPol-v1'", "did you mean 'CartPole-v1'"]),
    ("env.id=ALE/Pongg-v5", ["ALE/Pongg-v5", "ALE/Pong-v5"]),
    ("env.id=Pendulum-v1", ["Pendulum-v1", "discrete"]),
    ("agent.lerning_rate=0.1", ["unknown config key 'agent.lerning_rate'"]),
    ("agent.batch_size=big", ["'agent.batch_size' must be int"]),
    ("agent.name=tabular_q", ["unknown config key 'agent.optimizer' for agent 'tabular_q'"]),
])
def test_bad_training_input(tmp_path, override, needles):
    res = run_in_process("train.py", *CARTPOLE, f"run_dir={tmp_path}/r", override)
    assert_one_line(res, *needles)
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_tabular_agent_on_a_vector_env(tmp_path):
    res = run_in_process("train.py", "--config", "configs/tabular_nchain.yaml", f"run_dir={tmp_path}/r",
                         "env.id=CartPole-v1")
    assert_one_line(res, "tabular_q needs a discrete observation space", "CartPole-v1")


def test_missing_config_file(tmp_path):
    assert_one_line(run_in_process("train.py", "--config", "configs/nope.yaml"), "configs/nope.yaml", "not found")


def test_existing_run_directory_is_not_overwritten(trained):
    before = (trained / "checkpoints" / "final.pt").read_bytes()
    assert_one_line(run_in_process("train.py", *CARTPOLE, f"run_dir={trained}"), "already exists", "--overwrite")
    assert (trained / "checkpoints" / "final.pt").read_bytes() == before


def test_missing_checkpoint(tmp_path):
    assert_one_line(run_in_process("evaluate.py", str(tmp_path / "nothing.pt")), "not found")
    assert_one_line(run_in_process("evaluate.py", str(tmp_path)), "no checkpoints/final.pt")


def test_corrupt_checkpoint(tmp_path, trained):
    bad = tmp_path / "bad.pt"
    data = (trained / "checkpoints" / "final.pt").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    assert_one_line(run_in_process("evaluate.py", str(bad)), "corrupt")


class Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_checkpoint_with_arbitrary_pickle_is_refused_not_run(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "howsure-checkpoint/1", "payload": Boom()}, evil, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    res = run_in_process("evaluate.py", str(evil), cwd=tmp_path)
    assert_one_line(res, "corrupt or not a howsure checkpoint")
    assert not (tmp_path / "PWNED").exists()


def test_checkpoint_of_another_env_or_agent(trained, tmp_path):
    assert_one_line(run_in_process("evaluate.py", str(trained), "env.id=Acrobot-v1"),
                       "written by agent 'dqn' on 'CartPole-v1'")
    assert_one_line(run_in_process("train.py", "--resume", str(trained), "agent.name=tabular_q"), "tabular_q")


def test_checkpoint_with_mismatched_network(trained):
    assert_one_line(run_in_process("evaluate.py", str(trained), "encoder.mlp.hidden_sizes=[8]"),
                       "do not fit this network")


def test_render_without_display(trained):
    res = run_in_process("evaluate.py", str(trained), "--render", env={"DISPLAY": ""})
    assert_one_line(res, "display", "--video")


def test_recording_an_env_that_cannot_draw(tmp_path):
    """NChain draws text only: --video and --gif are refused before anything is played or written."""
    run = tmp_path / "nchain"
    res = run_in_process("train.py", "--config", "configs/tabular_nchain.yaml", "total_steps=200",
                         "eval.every_steps=0", "--quiet", f"run_dir={run}")
    assert res.returncode == 0, res.stderr
    for flag in (["--video", str(tmp_path / "v")], ["--gif", str(tmp_path / "a.gif")]):
        assert_one_line(run_in_process("evaluate.py", str(run), *flag), flag[0], "'NChain-v0' cannot draw", "ansi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nchain"]


@pytest.mark.parametrize("override, needles", [
    ("encoder.name=lstm", ["encoder 'lstm' with replay.kind='uniform'", "replay.kind=sequence"]),
    ("replay.kind=sequence", ["encoder 'mlp' with replay.kind='sequence'"]),
])
def test_recurrent_encoder_and_replay_kind_must_match(tmp_path, override, needles):
    assert_one_line(run_in_process("train.py", *CARTPOLE, f"run_dir={tmp_path}/r", override), *needles)


@pytest.mark.parametrize("capture", [True, False])
def test_a_failed_child_command_ends_in_one_line_with_its_exit_code(tmp_path, capsys, capture):
    """Benchmarks run train.py and evaluate.py as children (subprocess.run(check=True)): a child's
    user error ends the parent with one line and the child's exit code, not a traceback."""
    import subprocess
    import sys

    from howsure.errors import cli_main

    script = tmp_path / "child.py"
    script.write_text("import sys\nprint('error: unknown env id', file=sys.stderr)\nsys.exit(2)\n")

    @cli_main
    def parent():
        subprocess.run([sys.executable, str(script)], check=True, capture_output=capture, text=True)

    with pytest.raises(SystemExit) as exit_info:
        parent()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    said = "error: unknown env id" if capture else "its message is above"
    assert err[-1] == f"error: child.py exited with code 2 ({said})"
    assert not any("Traceback" in line for line in err)
