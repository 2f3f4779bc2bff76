"""An interrupted and resumed run matches an uninterrupted one where it must."""

import json
import signal
import subprocess
import sys
import time

import torch

from howsure.logger import read_scalars
from tests.conftest import ROOT, run_cli, train_in_process

ARGS = ["--config", "configs/dqn_cartpole.yaml", "agent.learning_starts_steps=300", "log.every_steps=250",
        "eval.every_steps=1000", "eval.episodes=2", "agent.epsilon_decay_steps=3000",
        "checkpoint_every_steps=1000", "--quiet", "encoder.mlp.hidden_sizes=[64,64]", "agent.batch_size=32"]


def load(run_dir):
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)


def test_resume_continues_without_gaps_or_duplicates(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert train_in_process(*ARGS, f"run_dir={full}", "total_steps=2000") == 0
    assert train_in_process(*ARGS, f"run_dir={part}", "total_steps=1000") == 0
    assert train_in_process("--resume", str(part), "total_steps=2000", "--quiet") == 0

    a, b = load(full), load(part)
    assert a["step"] == b["step"] == 2000
    assert a["agent"]["updates"] == b["agent"]["updates"]
    opt_a, opt_b = a["agent"]["optimizer"]["state"], b["agent"]["optimizer"]["state"]
    assert [s["step"].item() for s in opt_a.values()] == [s["step"].item() for s in opt_b.values()]
    assert b["loop"]["trained_through"] == a["loop"]["trained_through"]

    sa, sb = read_scalars(full), read_scalars(part)
    for tag in ("losses/td_loss", "charts/epsilon", "charts/SPS", "eval/episodic_return"):
        steps_a = [s for s, _ in sa[tag]]
        steps_b = [s for s, _ in sb[tag]]
        assert steps_b == sorted(set(steps_b)), f"duplicated steps in {tag}"
        assert steps_a == steps_b, tag
    assert [v for _, v in sa["charts/epsilon"]] == [v for _, v in sb["charts/epsilon"]]
    episode_steps = [s for s, _ in sb["charts/episodic_return"]]
    assert episode_steps == sorted(episode_steps)
    named = b["replay"]  # the replay generation the checkpoint names, with its observations
    assert any(k.startswith("obs_") for k in json.loads((part / "replay" / named).read_text())["files"])


def test_ctrl_c_writes_a_checkpoint_that_resumes(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *ARGS, f"run_dir={run_dir}",
                             "total_steps=1000000", "checkpoint_every_steps=0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(run_dir.glob("events.out.tfevents*")):
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in out and "Traceback" not in err
    state = load(run_dir)
    assert 0 < state["step"] < 1_000_000
    res = run_cli("train.py", "--resume", str(run_dir), f"total_steps={state['step'] + 500}", "--quiet")
    assert res.returncode == 0, res.stderr
    assert load(run_dir)["step"] == state["step"] + 500


SHORT = ["--config", "configs/dqn_cartpole.yaml", "total_steps=300", "agent.learning_starts_steps=100",
         "eval.every_steps=300", "eval.episodes=2", "eval.num_envs=2", "checkpoint_replay=false", "--quiet"]


def snapshot(run_dir):
    """Every file of a run directory with its bytes, to show a refused resume changed nothing."""
    return {p.relative_to(run_dir): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_a_finished_run_is_not_resumed_again(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    run = tmp_path / "run"
    assert train_in_process(*SHORT, f"run_dir={run}") == 0
    before = snapshot(run)
    for extra in ([], ["total_steps=200"]):
        assert_one_line(run_in_process("train.py", "--resume", str(run), *extra),
                        "finished at step 300", "total_steps=N with N > 300")
    assert snapshot(run) == before  # the summary, checkpoints and config.yaml are as training left them
    assert train_in_process("--resume", str(run), "--quiet", "total_steps=400") == 0
    assert json.loads((run / "summary.json").read_text())["step"] == 400


def test_a_run_that_used_its_time_limit_is_not_resumed_with_the_same_limit(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    run = tmp_path / "run"
    # 0.001 minutes: the cap ends training at its first check
    assert train_in_process(*SHORT, f"run_dir={run}", "total_steps=100000", "time_limit_minutes=0.001") == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_at_time_limit_step"] is not None and summary["step"] < 100000
    before = snapshot(run)
    assert_one_line(run_in_process("train.py", "--resume", str(run)),
                    "time_limit_minutes=0.001", "pass a larger time_limit_minutes")
    assert snapshot(run) == before


def test_resume_refuses_a_new_encoder_setting_or_optimizer(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    run = tmp_path / "run"
    assert train_in_process(*SHORT, f"run_dir={run}") == 0
    before = snapshot(run)
    # tanh fits the same weights and computes something else; rmsprop's state is not adam's
    for override, key in (("encoder.mlp.activation=tanh", "encoder.mlp.activation"),
                          ("agent.optimizer=rmsprop", "agent.optimizer")):
        assert_one_line(run_in_process("train.py", "--resume", str(run), "total_steps=400", override),
                        key, "cannot change on a resume")
    assert snapshot(run) == before
    assert train_in_process("--resume", str(run), "--quiet", "total_steps=400", "agent.lr=0.0005") == 0


def test_flags_that_contradict_each_other_are_refused(tmp_path):
    from tests.conftest import run_in_process

    for argv, needle in ((["--resume", str(tmp_path), "--config", "dqn_cartpole"], "drop --config"),
                         (["--resume", str(tmp_path), "--overwrite"], "pass only one of them"),
                         (["--config", "dqn_cartpole", "--seeds", ""], "--seeds is empty")):
        res = run_in_process("train.py", *argv)
        assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert list(tmp_path.iterdir()) == []
