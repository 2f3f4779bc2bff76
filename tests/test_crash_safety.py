"""kill -9 at each moment of a checkpoint write: --resume continues with the replay at the checkpoint's step.

A real train.py stops at a named point of its second checkpoint (howsure/faults.py), the test
kills it with SIGKILL, checks what is on disk, resumes, and checks again. Covered: the uniform,
sequence and Atari replays.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from howsure.cli import train
from tests.conftest import ROOT

COMMON = ["--quiet", "eval.every_steps=0", "torch_threads=1", "log.every_steps=100"]
# No learning (learning_starts beyond the run): the replay and the checkpoint are what is under test.
KINDS = {  # kind: (train.py arguments, checkpoint interval, steps of the first run)
    "uniform": (["--config", "configs/dqn_cartpole.yaml", "total_steps=300", "replay.capacity_steps=1000",
                 "agent.learning_starts_steps=100000"], 100, 300),
    "sequence": (["--config", "configs/drqn_cartpole_novel.yaml", "total_steps=300", "replay.capacity_steps=2000",
                  "agent.learning_starts_steps=100000"], 100, 300),
    "atari": (["--config", "configs/dqn_pong.yaml", "total_steps=240", "env.num_envs=2",
               "env.max_episode_frames=400", "replay.kind=atari", "replay.capacity_steps=2000", "replay.n_step=3",
               "agent.learning_starts_steps=100000"], 80, 240),
}
CASES = [("uniform", p) for p in ("replay_write", "replay_commit", "checkpoint_write", "checkpoint_commit")]
CASES += [("sequence", "replay_write"), ("sequence", "checkpoint_write"),
          ("atari", "replay_write"), ("atari", "checkpoint_commit")]


def latest(run):
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=True)


def replay_header(run, state):
    return json.loads((run / "replay" / state["replay"]).read_text())


def kill_at(run, args: list[str], point: str, pause_file) -> subprocess.Popen:
    """Start train.py, wait until it stops at the second time it reaches `point`, kill -9 it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOWSURE_PAUSE_AT": f"{point}@2",
           "HOWSURE_PAUSE_FILE": str(pause_file)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, f"run_dir={run}", *COMMON],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not pause_file.exists():
        if proc.poll() is not None:
            pytest.fail(f"train.py ended before reaching {point}: {proc.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, f"train.py never reached {point}"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return proc


@pytest.mark.parametrize("kind, point", CASES)
def test_kill_during_a_checkpoint_then_resume(tmp_path, kind, point):
    args, every, total = KINDS[kind]
    run = tmp_path / "run"
    kill_at(run, [*args, f"checkpoint_every_steps={every}"], point, tmp_path / "paused")

    # on disk after the kill: the last complete checkpoint and the replay of exactly its step
    state = latest(run)
    assert state["step"] == (2 * every if point == "checkpoint_commit" else every)
    header = replay_header(run, state)
    assert header["kind"] == kind and header["steps_added"] == state["step"]
    named = {state["replay"], *header["files"].values()}
    debris = [p.name for p in (run / "replay").iterdir() if p.name not in named]
    debris += [p.name for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert debris, "the kill left nothing half-written: the pause point was not inside the write"

    assert train.main(["--resume", str(run), "--quiet", f"total_steps={total + every}"]) == 0  # in-process
    state = latest(run)
    header = replay_header(run, state)
    assert state["step"] == total + every and header["steps_added"] == state["step"]
    # the next start removed everything the cut-short write left; the new saves left nothing either
    named = {state["replay"], *header["files"].values()}
    assert sorted(p.name for p in (run / "replay").iterdir()) == sorted(named)
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_a_deleted_replay_resumes_empty_with_a_warning(tmp_path, capsys):
    args, every, total = KINDS["uniform"]
    run = tmp_path / "run"
    assert train.main([*args, f"run_dir={run}", *COMMON, f"checkpoint_every_steps={every}"]) == 0
    for p in (run / "replay").iterdir():
        p.unlink()
    (run / "replay").rmdir()
    capsys.readouterr()
    assert train.main(["--resume", str(run), "--quiet", f"total_steps={total + every}"]) == 0
    err = capsys.readouterr().err
    assert "replay" in err and "empty replay" in err
    header = replay_header(run, latest(run))
    assert header["steps_added"] == every  # only what was added after the resume


def test_a_second_ctrl_c_waits_for_the_checkpoint_write(tmp_path):
    """Two SIGINTs while a checkpoint is being written: the write finishes, then the run stops at once."""
    args, every, total = KINDS["uniform"]
    run = tmp_path / "run"
    pause = tmp_path / "paused"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOWSURE_PAUSE_AT": "replay_commit@2",
           "HOWSURE_PAUSE_FILE": str(pause), "HOWSURE_PAUSE_SECONDS": "2"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, f"run_dir={run}", *COMMON,
                             f"checkpoint_every_steps={every}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not pause.exists():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert "interrupted" in err
    state = latest(run)  # the second checkpoint was finished, and its replay with it
    assert state["step"] == 2 * every
    assert replay_header(run, state)["steps_added"] == state["step"]
