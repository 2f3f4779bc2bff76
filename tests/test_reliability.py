"""Run directories survive misuse: one process per run, --overwrite only of runs, refused starts
change nothing, crash debris is swept, and every bad config value is one line naming the key.

Most refusals run train.main / evaluate.main in this process (cli_main's one line and exit code 2
without a new interpreter); a few go through the real CLI to show there is no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from howsure.replay.files import collect

from howsure import config, rundir, wiring
from howsure.cli import evaluate, train
from howsure.errors import UserError
from tests.conftest import ROOT, assert_one_line, run_in_process

# one xdist worker runs this module, so its module-scoped run fixture trains once
pytestmark = pytest.mark.xdist_group("test_reliability")

CARTPOLE = ["--config", "configs/dqn_cartpole.yaml", "eval.every_steps=0", "--quiet"]


def refused(capsys, main, argv: list[str]) -> str:
    """Run a CLI main in-process; it must exit 2 with one line on stderr, returned."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock file's (a process that takes the lock writes its PID there)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != rundir.LOCK_FILE}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 300-step run with its replay (tests copy it before changing anything)."""
    run_dir = tmp_path_factory.mktemp("reliability") / "run"
    assert train.main([*CARTPOLE, "total_steps=300", f"run_dir={run_dir}"]) == 0
    return run_dir


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


# --------------------------------------------------------------------------- one process per run


def test_second_process_on_a_run_is_refused_naming_the_pid(tmp_path, capsys):
    run_dir = tmp_path / "busy"
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *CARTPOLE, f"run_dir={run_dir}", "total_steps=100000000",
         "agent.learning_starts_steps=100000000", "checkpoint_every_steps=0", "checkpoint_replay=false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.time() + 120
        while not (run_dir / "config.yaml").is_file():  # written once the first run is accepted
            assert first.poll() is None, first.stderr.read()
            assert time.time() < deadline, "the first run did not start"
            time.sleep(0.1)
        assert rundir.holder_pid(run_dir) == first.pid
        saved = (run_dir / "config.yaml").read_bytes()

        # the second runs in this (pytest) process: another process than the first, without the
        # seconds a fresh interpreter spends importing torch
        for argv in (["--resume", str(run_dir), "--quiet"], [*CARTPOLE, f"run_dir={run_dir}", "--overwrite"],
                     [*CARTPOLE, f"run_dir={run_dir}"]):
            assert f"in use by process {first.pid}" in refused(capsys, train.main, argv)
        assert first.poll() is None
        assert (run_dir / "config.yaml").read_bytes() == saved
        assert list(run_dir.glob("events.out.tfevents*")), "--overwrite deleted a live run"
        assert rundir.holder_pid(run_dir) == first.pid
    finally:
        first.send_signal(signal.SIGKILL)  # dies holding the lock, as a crashed run does
        first.wait(timeout=60)
        first.stderr.close()
    rundir.lock(run_dir)  # the kernel released the dead process's lock
    assert rundir.holder_pid(run_dir) == os.getpid()
    rundir.release(run_dir)


# --------------------------------------------------------------------------- --overwrite


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "thesis"
    (folder / "chapters").mkdir(parents=True)
    (folder / "notes.txt").write_text("years of work\n")
    (folder / "chapters" / "one.tex").write_text("\\chapter{One}\n")
    (folder / "config.yaml").write_text("seed: 0\n")  # a config.yaml alone does not make a run
    before = snapshot(folder)
    line = refused(capsys, train.main, [*CARTPOLE, f"run_dir={folder}", "--overwrite"])
    assert "not one" in line and str(folder) in line
    assert snapshot(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == ["chapters", "config.yaml", "notes.txt"]
    assert "not a howsure run directory" in refused(capsys, train.main, [*CARTPOLE, f"run_dir={folder}"])


def test_overwrite_replaces_a_run(run_copy, capsys):
    (run_copy / "checkpoints" / "stale.pt").write_bytes(b"old")
    assert train.main([*CARTPOLE, "total_steps=100", f"run_dir={run_copy}", "--overwrite"]) == 0
    assert not (run_copy / "checkpoints" / "stale.pt").exists()
    assert torch.load(run_copy / "checkpoints" / "final.pt", weights_only=True)["step"] == 100


def test_overwrite_refused_by_a_later_check_keeps_the_old_run(run_copy, capsys):
    before = snapshot(run_copy)
    # valid values, but a combination train() refuses after the run directory was prepared
    line = refused(capsys, train.main, [*CARTPOLE, f"run_dir={run_copy}", "--overwrite", "encoder.name=lstm"])
    assert "lstm" in line
    assert snapshot(run_copy) == before


# --------------------------------------------------------------------------- refused and accepted resumes


def test_refused_resume_leaves_config_yaml_byte_identical(run_copy, capsys):
    before = snapshot(run_copy)
    line = refused(capsys, train.main, ["--resume", str(run_copy), "total_steps=400", "replay.capacity_steps=1000",
                                        "--quiet"])
    assert "capacity" in line
    line = refused(capsys, train.main, ["--resume", str(run_copy), "total_steps=400", "agent.name=boot_dqn", "--quiet"])
    assert "boot_dqn" in line
    line = refused(capsys, train.main, ["--resume", str(run_copy), "agent.gamma=2", "--quiet"])
    assert "'agent.gamma'" in line
    assert snapshot(run_copy) == before  # config.yaml, checkpoints and replay alike


def test_temp_files_are_removed_when_the_run_starts_again(run_copy):
    # names no save of this run rewrites, so only the sweep at the start can remove them
    debris = [run_copy / "checkpoints" / "latest.pt.k2v9x1.tmp", run_copy / "replay" / "priorities.tmp.npy",
              run_copy / "replay" / "states.tmp.npy", run_copy / "config.yaml.a8f3.tmp",
              run_copy / "model.safetensors.q0z1.tmp"]
    kept = run_copy / "checkpoints" / "notes.txt"  # not a temp file: stays
    kept.write_text("mine\n")
    for path in debris:
        path.write_bytes(b"half a write")
    assert train.main(["--resume", str(run_copy), "total_steps=400", "--quiet"]) == 0
    assert [p for p in debris if p.exists()] == []
    assert kept.read_text() == "mine\n"
    assert wiring.load(run_copy / "config.yaml").total_steps == 400  # rewritten once accepted
    assert torch.load(run_copy / "checkpoints" / "latest.pt", weights_only=True)["step"] == 400


def test_collect_keeps_only_the_named_generation(tmp_path):
    (tmp_path / "header.0123abcd.json").write_text(json.dumps({"files": {"obs": "obs.0123abcd.npy"}}))
    (tmp_path / "header.deadbeef.json").write_text(json.dumps({"files": {"obs": "obs.deadbeef.npy"}}))
    for name in ("obs.0123abcd.npy", "obs.deadbeef.npy", "header.feedf00d.json.tmp", "obs.npy", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    removed = sorted(p.name for p in collect(tmp_path, "header.0123abcd.json"))
    assert removed == ["header.deadbeef.json", "header.feedf00d.json.tmp", "obs.deadbeef.npy", "obs.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["header.0123abcd.json", "notes.txt", "obs.0123abcd.npy"]


# --------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("override, needle", [("env.flicker_prob=0.5", "set env.flicker_prob=0"),
                                              ("env.detector=runs/det.pt", "set env.detector=null")])
def test_screen_wrappers_refuse_envs_without_screens(override, needle):
    from howsure.envs import make_env

    cfg = wiring.load("configs/dqn_cartpole.yaml", [override])
    with pytest.raises(UserError) as err:
        make_env(cfg.env)
    message = str(err.value)
    assert "\n" not in message and needle in message and "CartPole-v1" in message


@pytest.mark.parametrize("overrides, needles", [
    (["agent.gamma=1.5"], ["'agent.gamma'", "[0, 1]"]),
    (["agent.gamma=-0.1"], ["'agent.gamma'", "[0, 1]"]),
    (["agent.gamma=2"], ["'agent.gamma'", "[0, 1]"]),  # the values issue 15 found accepted
    (["agent.gamma=-1"], ["'agent.gamma'", "[0, 1]"]),
    (["total_steps=-5"], ["'total_steps'", ">= 1"]),
    (["agent.updates_per_train=-1"], ["'agent.updates_per_train'", ">= 1"]),
    (["agent.target_tau=-2"], ["'agent.target_tau'", "(0, 1]"]),
    (["encoder.mlp.hidden_sizes=[-1]"], ["'encoder.mlp.hidden_sizes'", ">= 1"]),
    (["agent.epsilon_start=2"], ["'agent.epsilon_start'", "[0, 1]"]),
    (["agent.epsilon_end=-0.5"], ["'agent.epsilon_end'", "[0, 1]"]),
    (["env.sticky_action_prob=1.2"], ["'env.sticky_action_prob'", "[0, 1]"]),
    (["agent.name=pqn", "agent.q_lambda=1.5"], ["'agent.q_lambda'", "[0, 1]"]),
    (["agent.target_tau=0"], ["'agent.target_tau'", "(0, 1]"]),
    (["agent.target_tau=1.5"], ["'agent.target_tau'", "(0, 1]"]),
    (["eval.epsilon=1.1"], ["'eval.epsilon'", "[0, 1]"]),
    (["total_steps=0"], ["'total_steps'", ">= 1"]),
    (["agent.batch_size=0"], ["'agent.batch_size'", ">= 1"]),
    (["env.num_envs=0"], ["'env.num_envs'", ">= 1"]),
    (["agent.updates_per_train=0"], ["'agent.updates_per_train'", ">= 1"]),
    (["eval.episodes=0"], ["'eval.episodes'", ">= 1"]),
    (["replay.capacity_steps=-5"], ["'replay.capacity_steps'", ">= 1"]),
    (["encoder.mlp.hidden_sizes=[64,0]"], ["'encoder.mlp.hidden_sizes'", ">= 1"]),
    (["agent.name=pqn", "agent.rollout_steps=0"], ["'agent.rollout_steps'", ">= 1"]),
    (["agent.name=bayes_dqn", "agent.dropout_p=[0.1,1.0]"], ["'agent.dropout_p'", "[0, 1)"]),
    (["agent.lr=0"], ["'agent.lr'", "> 0"]),
    (["agent.lr=-0.001"], ["'agent.lr'", "> 0"]),
    (["agent.lr=inf"], ["'agent.lr'", "finite"]),
    (["agent.lr=nan"], ["'agent.lr'", "finite"]),
    (["eval.stop_return=nan"], ["'eval.stop_return'", "finite"]),
    (["seed=-1"], ["'seed'", ">= 0"]),
    (["device=banana"], ["'device'", "cpu, cuda or cuda:N"]),
    pytest.param(["device=cuda"], ["'device'", "set device=cpu"],
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    (["device=cuda:99"], ["'device'", "cuda:99"]),
])
def test_bad_value_is_one_line_naming_the_key(overrides, needles):
    with pytest.raises(UserError) as err:
        wiring.load(None, overrides)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_every_rule_names_a_real_key():
    from howsure import agents

    defaults = wiring.load(None)
    agent_fields = {f for name in agents.AGENTS for f in agents.AGENTS.get(name).Config.__dataclass_fields__}
    for key in config.RULES:
        if key.startswith("agent."):
            assert key.split(".", 1)[1] in agent_fields, key
        else:
            assert config.lookup(defaults, key) is not config._MISSING, key


def test_bad_values_through_the_cli(tmp_path):
    assert_one_line(run_in_process("train.py", *CARTPOLE, f"run_dir={tmp_path}/r", "agent.gamma=1.5"),
                    "'agent.gamma'", "[0, 1]")
    assert not (tmp_path / "r").exists()
    assert_one_line(run_in_process("evaluate.py", str(tmp_path), "--seed", "-1"), "--seed", ">= 0")


@pytest.mark.parametrize("content, needles", [
    (b"", ["empty"]),
    (b"# only a comment\n", ["empty"]),
    (bytes(range(256)) * 4, ["not text"]),
    (b"seed: 0\x00\x01\x02", ["NUL"]),
])
def test_empty_or_binary_config_file(tmp_path, capsys, content, needles):
    path = tmp_path / "preset.yaml"
    path.write_bytes(content)
    line = refused(capsys, train.main, ["--config", str(path), f"run_dir={tmp_path}/r"])
    assert str(path) in line and all(n in line for n in needles), line
    export = tmp_path / "export"  # evaluate.py reads an export folder's config.yaml the same way
    export.mkdir()
    (export / "config.yaml").write_bytes(content)
    (export / "model.safetensors").write_bytes(b"\0" * 16)
    line = refused(capsys, evaluate.main, [str(export)])
    assert "config.yaml" in line and all(n in line for n in needles), line


def test_bad_evaluate_flags(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for argv, needle in [(["--seed", "-1"], "--seed"), (["--episodes", "0"], "--episodes"),
                         (["--epsilon", "1.5"], "--epsilon"), (["--json", str(tmp_path)], "is a directory"),
                         (["--json", str(a_file / "out.json")], "is a file"),
                         (["--video", str(a_file)], "is a file"),
                         (["--gif", str(tmp_path / "agent.png")], "ending in .gif"),
                         (["--gif", str(a_file / "agent.gif")], "is a file"),
                         (["--gif", str(tmp_path)], "ending in .gif"),
                         (["--gif", str(tmp_path / "agent.gif"), "--gif-frames", "-1"], "--gif-frames"),
                         (["--render", "--gif", str(tmp_path / "agent.gif")], "use one of them")]:
        assert needle in refused(capsys, evaluate.main, [str(tmp_path / "nothing"), *argv]), argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


# --------------------------------------------------------------------------- malformed files


def _edit_checkpoint(run: Path, change) -> Path:
    path = run / "checkpoints" / "latest.pt"
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    return path


CHECKPOINT_CASES = {  # name: (how latest.pt is spoilt, words the one line must hold)
    "no meta": (lambda s: s.pop("meta"), ["'meta'"]),
    "no agent": (lambda s: s.pop("agent"), ["'agent'"]),
    "no rng": (lambda s: s.pop("rng"), ["'rng'"]),
    "config a YAML list": (lambda s: s.update(config_yaml="- 1\n- 2\n"), ["YAML list"]),
    "config an int": (lambda s: s.update(config_yaml=7), ["'config_yaml'"]),
    "config python-tagged": (lambda s: s.update(config_yaml="!!python/object/apply:os.system ['echo x']\n"),
                             ["not plain YAML"]),
    "replay named by a path": (lambda s: s.update(replay="../../elsewhere/header.0123abcd.json"),
                               ["not a file of that folder"]),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_malformed_checkpoint_is_one_line(run_copy, capsys, case):
    change, needles = CHECKPOINT_CASES[case]
    path = _edit_checkpoint(run_copy, change)
    line = refused(capsys, train.main, ["--resume", str(run_copy), "total_steps=400", "--quiet"])
    assert all(n in line for n in needles), line
    if case != "replay named by a path":  # evaluate.py does not read the replay
        line = refused(capsys, evaluate.main, [str(path), "--episodes", "1"])
        assert all(n in line for n in needles), line


def test_yaml_file_passed_as_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "model.pt"
    path.write_text("seed: 0\nagent:\n  name: dqn\n")
    assert "corrupt or not a howsure checkpoint" in refused(capsys, evaluate.main, [str(path)])


def _header(run: Path) -> Path:
    return run / "replay" / torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["replay"]


def _spoil_actions(run: Path) -> None:
    header = json.loads(_header(run).read_text())
    path = run / "replay" / header["files"]["actions_00000"]
    actions = np.load(path)
    actions[0] = 99  # CartPole has 2 actions
    np.save(path, actions)


REPLAY_CASES = {  # name: (how the replay is spoilt, words the one line must hold)
    "header a list": (lambda r: _header(r).write_text("[]"), ["not a JSON object"]),
    "header not JSON": (lambda r: _header(r).write_text("{oops"), ["missing or corrupt"]),
    "no size": (lambda r: _rewrite(r, lambda h: h.pop("size")), ["corrupt", "size"]),
    "bad rng": (lambda r: _rewrite(r, lambda h: h.update(rng=5)), ["corrupt"]),
    "no files": (lambda r: _rewrite(r, lambda h: h.pop("files")), ["missing or corrupt"]),
    "files not a table": (lambda r: _rewrite(r, lambda h: h.update(files=[1, 2])), ["no table of files"]),
    "absolute path": (lambda r: _rewrite(r, lambda h: h["files"].update(obs_00000="/etc/passwd")),
                      ["not a file of that folder"]),
    "size past capacity": (lambda r: _rewrite(r, lambda h: h.update(size=10**9)), ["corrupt"]),
    "chunk deleted": (lambda r: (r / "replay" / json.loads(_header(r).read_text())["files"]["obs_00000"]).unlink(),
                      ["missing or corrupt"]),
    "actions out of range": (_spoil_actions, ["actions out of range"]),
}


def _rewrite(run: Path, change) -> None:
    header = json.loads(_header(run).read_text())
    change(header)
    _header(run).write_text(json.dumps(header))


@pytest.mark.parametrize("case", sorted(REPLAY_CASES))
def test_malformed_replay_is_one_line(run_copy, capsys, case):
    spoil, needles = REPLAY_CASES[case]
    spoil(run_copy)
    line = refused(capsys, train.main, ["--resume", str(run_copy), "total_steps=400", "--quiet"])
    assert "replay" in line and all(n in line for n in needles), line


@pytest.mark.parametrize("field, value", [("written", "abc"), ("written", [-5]), ("pending", 3),
                                          ("n_envs", -1), ("new_episode", None), ("rng", "x")])
def test_malformed_atari_replay_header_is_a_user_error(tmp_path, field, value):
    from howsure.replay.atari import AtariReplay

    a = AtariReplay(100, (4, 6, 6), np.uint8, 0.9)
    frame = np.zeros((1, 4, 6, 6), np.uint8)
    for _ in range(20):
        a.add(frame, np.zeros(1), np.zeros(1), frame, np.zeros(1, bool), np.zeros(1, bool))
    name = a.save(tmp_path)
    header = json.loads((tmp_path / name).read_text())
    header[field] = value
    (tmp_path / name).write_text(json.dumps(header))
    with pytest.raises(UserError, match="corrupt"):
        AtariReplay(100, (4, 6, 6), np.uint8, 0.9).load(tmp_path, name)


@pytest.mark.parametrize("field, value", [("n_envs", "x"), ("rng", 1), ("files", {"count": "../count.npy"})])
def test_malformed_sequence_replay_header_is_a_user_error(tmp_path, field, value):
    from howsure.replay.sequence import SequenceReplay

    s = SequenceReplay(200, (3,), np.float32, 0.9, sequence_steps=4)
    for _ in range(30):
        s.add(np.zeros((2, 3), np.float32), np.zeros(2, int), np.zeros(2), np.zeros((2, 3), np.float32),
              np.zeros(2, bool))
    name = s.save(tmp_path)
    header = json.loads((tmp_path / name).read_text())
    header[field] = value
    (tmp_path / name).write_text(json.dumps(header))
    with pytest.raises(UserError):
        SequenceReplay(200, (3,), np.float32, 0.9, sequence_steps=4).load(tmp_path, name)


# --------------------------------------------------------------------------- filesystem errors


def test_run_dir_that_cannot_be_written_is_one_line(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: a read-only mount instead
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                                 capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"root, and cannot mount a read-only tmpfs here ({mounted.stderr.decode().strip()[:80]})")
    else:
        folder.chmod(0o500)
    try:
        line = refused(capsys, train.main, [*CARTPOLE, f"run_dir={folder}/run", "total_steps=10"])
        assert str(folder) in line and ("Read-only" in line or "Permission denied" in line), line
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], capture_output=True)
        folder.chmod(0o700)


def test_run_dir_under_a_file_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for run_dir in (a_file, a_file / "run", Path("/dev/null")):
        line = refused(capsys, train.main, [*CARTPOLE, f"run_dir={run_dir}", "total_steps=10"])
        assert "run_dir" in line or str(run_dir) in line, line
    assert a_file.read_text() == "x"
    not_utf8 = str(tmp_path) + "/bad" + b"\xff".decode("utf-8", "surrogateescape")  # as argv gives it
    assert "not valid UTF-8" in refused(capsys, train.main, [*CARTPOLE, f"run_dir={not_utf8}", "total_steps=10"])
    assert not any(p.name.startswith("bad") for p in tmp_path.iterdir())


def test_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """The disk fills while the second checkpoint is written: one line, and the first one still loads."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs (run as root to cover the full disk)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()[:80]})")
    try:
        run, pause = disk / "run", tmp_path / "paused"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOWSURE_PAUSE_AT": "replay_write@2",
               "HOWSURE_PAUSE_FILE": str(pause), "HOWSURE_PAUSE_SECONDS": "3"}
        proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *CARTPOLE, f"run_dir={run}",
                                 "total_steps=600", "checkpoint_every_steps=200", "torch_threads=1"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while not pause.exists():
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with open(disk / "filler", "wb") as fh:  # fill the disk while the save is paused
            try:
                while True:
                    fh.write(b"\0" * (1 << 16))
                    fh.flush()
            except OSError:
                pass
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and "Traceback" not in err, err[-2000:]
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "No space left" in lines[0], lines
        state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
        assert state["step"] == 200
        header = json.loads((run / "replay" / state["replay"]).read_text())
        assert header["steps_added"] == state["step"]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_start_refused_once_the_env_is_built_leaves_no_folder(tmp_path, capsys):
    # the env has to exist before the encoder can tell it gets no images: the run folder exists by then
    new, kept = tmp_path / "new" / "run", tmp_path / "kept"
    kept.mkdir()
    for run_dir in (new, kept):
        line = refused(capsys, train.main, [*CARTPOLE, "encoder.name=nature_cnn", f"run_dir={run_dir}"])
        assert "needs image observations" in line
    assert not new.exists() and (tmp_path / "new").is_dir()  # only the folder this start made goes
    assert kept.is_dir() and list(kept.iterdir()) == []  # a folder the user made stays, empty


def test_a_sweep_folder_given_for_a_run_names_its_runs(trained, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        shutil.copytree(trained, sweep / f"seed{seed}")
    expected = f"it holds 2 runs, e.g. {str(sweep / 'seed0')!r}: pass one of them"
    assert expected in refused(capsys, train.main, ["--resume", str(sweep), "total_steps=400"])
    assert expected in refused(capsys, evaluate.main, [str(sweep), "--episodes", "1"])
    assert evaluate.main([str(sweep / "seed1"), "--episodes", "1"]) == 0  # the run it names plays
