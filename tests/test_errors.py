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
                       "do not fit this network (Unexpected key(s) in state_dict: \"encoder.net.2.weight\"")
    assert_one_line(run_in_process("evaluate.py", str(trained), "encoder.mlp.hidden_sizes=[8,8]"),
                       "(size mismatch for encoder.net.0.weight", "the shape in current model is [8, 4]")


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


# ------------------------------------------------ outputs never land on what howsure keeps

def run_main(main, *args: str):
    """A cli_main entry point (howsure.export, howsure.plot) called in this process, with
    run_in_process's result: its exit code and what it printed."""
    import contextlib
    import io
    import subprocess

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args)) or 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    from howsure.export import main as export_main

    out = tmp_path_factory.mktemp("exports") / "cartpole"
    res = run_main(export_main, str(trained), str(out))
    assert res.returncode == 0, res.stderr
    return out


def test_evaluate_outputs_are_refused_on_a_run_or_export_s_own_files(trained, exported, tmp_path):
    before, export_before = snapshot(trained), snapshot(exported)
    (tmp_path / "link.json").symlink_to(trained / "summary.json")
    for flag, value, needle in [
        ("--json", trained / "config.yaml", "a file of the howsure run directory"),
        ("--json", trained / "summary.json", "a file of the howsure run directory"),
        ("--json", trained / ".howsure.lock", "a file of the howsure run directory"),
        ("--json", trained / "checkpoints" / "final.pt", "inside 'checkpoints'"),
        ("--json", trained / "checkpoints" / "new.json", "inside 'checkpoints'"),
        ("--json", tmp_path / "link.json", "(where it leads)"),
        ("--gif", trained / "replay" / "a.gif", "inside 'replay'"),
        ("--video", trained / "checkpoints", "the 'checkpoints' folder"),
        ("--json", exported / "config.yaml", "a file of the howsure export folder"),
        ("--json", exported / "model.safetensors", "a file of the howsure export folder"),
    ]:
        res = run_in_process("evaluate.py", str(trained), "--episodes", "1", flag, str(value))
        assert_one_line(res, f"{flag} {str(value)!r}", needle, "which only howsure writes", "name another")
    assert snapshot(trained) == before and snapshot(exported) == export_before


def test_evaluate_output_in_an_unwritable_folder_is_refused_before_playing(trained, tmp_path):
    for flag, value in [("--json", "/proc/x.json"), ("--gif", "/proc/sub/a.gif"), ("--video", "/proc/videos")]:
        res = run_in_process("evaluate.py", str(trained), "--episodes", "1", flag, value)
        assert_one_line(res, f"{flag} {value!r}", "cannot create files in '/proc'", "folder you may write to")
        assert "episode" not in res.stdout  # refused before anything was played
    assert not list((trained).glob(".howsure-write-test-*"))
    # an ordinary output file is overwritten on a second run, as users of such tools expect
    out = tmp_path / "eval.json"
    for _ in range(2):
        res = run_in_process("evaluate.py", str(trained), "--episodes", "1", "--json", str(out))
        assert res.returncode == 0, res.stderr
    assert '"episodes": 1' in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]  # the write test leaves nothing


def test_export_refuses_a_run_directory_as_its_target(trained, exported, tmp_path):
    import shutil

    from howsure.export import main as export_main

    other = tmp_path / "other"
    shutil.copytree(trained, other)
    before, other_before = snapshot(trained), snapshot(other)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.yaml").write_text("mine: 1\n")
    for out, needles in [
        (other, ["is a howsure run directory", "name a new folder", f"{str(other)}-export"]),
        (trained, ["is the source run directory itself", "name a new folder"]),
        (trained / "export", ["is inside the source run", "name a new folder"]),
        (tmp_path / "mine", ["holds a config.yaml of its own", "name a new folder"]),
        (trained / "summary.json", ["is a file", "name a new folder"]),
    ]:
        assert_one_line(run_main(export_main, str(trained), str(out)), f"export target {str(out)!r}", *needles)
    assert snapshot(trained) == before and snapshot(other) == other_before
    assert (tmp_path / "mine" / "config.yaml").read_text() == "mine: 1\n"
    # exporting again into an earlier export replaces it
    res = run_main(export_main, str(trained / "checkpoints" / "final.pt"), str(exported))
    assert res.returncode == 0 and "exported" in res.stdout, res.stderr


@pytest.mark.parametrize("args, needles", [
    (["--reps", "0"], ["--reps must be", "got 0"]),
    (["--reps", "-1"], ["--reps must be", "got -1"]),
    (["--seed", "-1"], ["--seed must be an integer >= 0, got -1"]),
    (["--smooth", "-3"], ["--smooth must be 0", "got -3"]),
    (["--out", "{tmp}/x.txt"], ["matplotlib cannot draw a .txt file", "x.png"]),
    (["--out", "{tmp}/curves"], ["a file without a suffix", "curves.png"]),
    (["--out", "{run}/config.yaml"], ["cannot draw a .yaml file"]),
    (["--out", "{run}/summary.png"], ["would put its JSON at", "summary.json", "only howsure writes"]),
    (["--out", "{run}/checkpoints/c.png"], ["inside 'checkpoints'", "only howsure writes"]),
    (["--out", "{tmp}"], ["is a folder; name a file", "curves.png"]),
    (["--out", "/proc/c.png"], ["cannot create files in '/proc'"]),
])
def test_plot_arguments_are_checked_up_front(trained, tmp_path, args, needles):
    from howsure.plot import main as plot_main

    args = [a.format(tmp=tmp_path, run=trained) for a in args]
    before = snapshot(trained)
    assert_one_line(run_main(plot_main, str(trained), *args), *needles)
    assert snapshot(trained) == before and not list(tmp_path.iterdir())


def test_plot_warns_of_a_run_with_a_corrupt_event_file(tmp_path):
    from howsure.logger import Logger
    from howsure.plot import main as plot_main

    for seed in range(3):
        log = Logger(tmp_path / "sweep" / f"seed{seed}")
        for step in range(0, 1001, 250):
            log.scalar("eval/episodic_return", step / 10, step)
        log.close()
    (bad,) = (tmp_path / "sweep" / "seed1").glob("events.out.tfevents*")
    bad.write_bytes(b"garbage")
    res = run_main(plot_main, str(tmp_path / "sweep"), "--reps", "20", "--out", str(tmp_path / "c.png"))
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == (f"warning: skipped run {str(tmp_path / 'sweep' / 'seed1')!r}: its event file "
                                  f"{bad.name!r} is corrupt; the plot is of the other runs")
    assert "eval/episodic_return: 2 runs" in res.stdout and f"wrote {tmp_path / 'c.png'} and" in res.stdout
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("content, reason", [
    (b"garbage", "it is not a file torch.save wrote"),
    (b"seed: 0\nagent: dqn\n", "it is not a file torch.save wrote"),
    (b"", "the file is empty"),
])
def test_corrupt_checkpoint_message_is_ours_not_torch_s(trained, tmp_path, content, reason):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "checkpoints" / "final.pt").write_bytes(content)
    res = run_in_process("evaluate.py", str(run))
    assert_one_line(res, f"checkpoint {str(run / 'checkpoints' / 'final.pt')!r} is corrupt or not a howsure "
                    f"checkpoint ({reason}); use another checkpoint of the run", "latest.pt", "or retrain")
    assert "Weights" not in res.stderr and "torch" not in res.stderr.replace("torch.save", "")
