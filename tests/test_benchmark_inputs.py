"""The benchmark scripts' own inputs: their howsure half runs, and bad arguments get one line."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, assert_one_line, train_in_process


def test_cartpole_benchmark_trains_howsure_through_the_api():
    from benchmarks.cartpole import run_howsure

    row = run_howsure(0, 300, 300, 2, str(ROOT / "configs" / "dqn_cartpole.yaml"))
    assert row["framework"] == "howsure" and row["seed"] == 0
    assert row["steps_to_475"] is None and row["best_eval"] > 0  # one evaluation at 300 steps, far from 475


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_bad_counts_and_configs_are_refused_before_anything_runs():
    res = script("memory.py", "--lengths", "0")
    assert res.returncode == 2 and "--lengths: must be at least 1, got 0" in res.stderr
    res = script("cartpole.py", "--seeds", "-1")
    assert res.returncode == 2 and "--seeds: must be at least 0, got -1" in res.stderr
    assert_one_line(script("cartpole.py", "--config", "nope", "--frameworks", "howsure"), "config 'nope' not found")


def test_pong_fast_report_refuses_a_run_of_another_game(tmp_path):
    run = tmp_path / "run"
    assert train_in_process("--config", "configs/dqn_cartpole.yaml", "total_steps=300", "eval.every_steps=300",
                            "eval.episodes=2", "agent.learning_starts_steps=100", "--quiet", f"run_dir={run}") == 0
    out = tmp_path / "report"
    assert_one_line(script("pong_fast.py", str(run), "--out", str(out)), "'CartPole-v1'", "ALE/Pong-v5")
    assert not list(tmp_path.glob("report*"))
