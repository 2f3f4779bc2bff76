"""Seed sweeps (train.py --seeds) and multi-seed plots (python -m howsure.plot): IQM and bootstrap
bands against hand-computed values, and one smoke run of each CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from howsure.errors import UserError
from howsure.logger import Logger, read_scalars
from howsure.plot import aggregate, bootstrap_ci, find_runs, iqm, on_grid, smooth
from howsure.plot import main as plot_main
from howsure.sweep import parse_seeds
from tests.conftest import ROOT, run_cli


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    for bad in ("a,b", "1,1", ""):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_iqm_is_the_mean_of_the_middle_half():
    # 8 runs: the 2 lowest and 2 highest are cut, the middle four averaged
    values = np.array([-100.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 1000.0])[:, None]
    assert iqm(values)[0] == pytest.approx((1 + 2 + 3 + 4) / 4)


def test_bootstrap_band_contains_the_iqm_and_shrinks_with_agreement():
    rng = np.random.default_rng(0)
    spread = rng.normal(0, 10, size=(5, 3))
    agree = rng.normal(0, 0.1, size=(5, 3))
    lo, hi = bootstrap_ci(spread, reps=500)
    center = iqm(spread)
    assert np.all(lo <= center + 1e-9) and np.all(center <= hi + 1e-9)
    lo2, hi2 = bootstrap_ci(agree, reps=500)
    assert np.all(hi2 - lo2 < (hi - lo) / 10)
    identical = np.ones((4, 2))
    lo3, hi3 = bootstrap_ci(identical, reps=100)
    assert np.allclose(lo3, 1) and np.allclose(hi3, 1)


def test_grid_interpolates_on_the_common_range():
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    b = (np.array([5.0, 15.0, 30.0]), np.array([1.0, 1.0, 1.0]))
    grid, values = on_grid([a, b])
    assert grid.tolist() == [5.0, 10.0, 15.0, 20.0]
    assert values[0].tolist() == [5.0, 10.0, 15.0, 20.0] and values[1].tolist() == [1.0] * 4


def test_smooth_is_a_trailing_mean():
    assert smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist() == [1.0, 2.0, 4.0, 6.0]


def fake_sweep(root, finals):
    """Runs whose eval curve rises linearly to `final`, written with the project's own Logger."""
    for seed, final in enumerate(finals):
        log = Logger(root / f"seed{seed}")
        for step in range(0, 1001, 250):
            log.scalar("eval/episodic_return", final * step / 1000, step)
        log.close()


def test_plot_reads_event_files_and_writes_png(tmp_path):
    fake_sweep(tmp_path, [100.0, 200.0, 300.0, 400.0])
    assert len(find_runs(tmp_path)) == 4
    assert plot_main([str(tmp_path), "--reps", "200"]) == 0  # in-process: the CLI smoke run is below
    png = tmp_path / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (curve,) = json.loads((tmp_path / "curves.json").read_text())
    assert curve["tag"] == "eval/episodic_return" and curve["runs"] == 4
    assert curve["step"] == [0, 250, 500, 750, 1000]
    assert curve["iqm"][-1] == pytest.approx(250.0)  # middle two of 100..400
    assert curve["ci_low"][-1] <= 250.0 <= curve["ci_high"][-1]
    assert curve["ci_low"][-1] >= 100.0 and curve["ci_high"][-1] <= 400.0


def test_plot_of_an_empty_folder_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        plot_main([str(tmp_path)])
    assert exit_.value.code == 2 and "no TensorBoard event files" in capsys.readouterr().err
    assert aggregate([], "eval/episodic_return") is None


def test_serial_sweep_writes_one_run_per_seed(tmp_path):
    sweep = tmp_path / "sweep"
    res = run_cli("train.py", "--config", "configs/dqn_cartpole.yaml", "--seeds", "0,1",
                  "--sweep-backend", "serial", f"run_dir={sweep}", "total_steps=600",
                  "agent.learning_starts_steps=200", "eval.every_steps=300", "eval.episodes=2",
                  "eval.num_envs=2", "log.every_steps=300", "checkpoint_replay=false", "torch_threads=1",
                  "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((sweep / "sweep.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [0, 1] and summary["backend"] == "serial"
    first_returns = []
    for seed in (0, 1):
        run = sweep / f"seed{seed}"
        assert (run / "checkpoints" / "final.pt").is_file()
        assert f"seed: {seed}" in (run / "config.yaml").read_text()
        scalars = read_scalars(run)
        assert [s for s, _ in scalars["eval/episodic_return"]] == [300, 600]
        first_returns.append([v for _, v in scalars["charts/episodic_return"]][:5])
    assert first_returns[0] != first_returns[1]  # the seeds really differ
    out = subprocess.run([sys.executable, "-m", "howsure.plot", str(sweep), "--reps", "100"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (sweep / "curves.png").is_file()


TINY = ["--config", "configs/dqn_cartpole.yaml", "total_steps=200", "agent.learning_starts_steps=100",
        "eval.every_steps=0", "checkpoint_replay=false", "torch_threads=1", "--quiet"]


def folder_bytes(path):
    """Every file under a folder with its bytes, to show a refused start changed nothing."""
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_overwrite_replaces_only_a_folder_a_sweep_wrote(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    runs = tmp_path / "myruns"  # single runs side by side, as in runs/: not a sweep
    for name in ("a", "b"):
        assert run_in_process("train.py", *TINY, f"run_dir={runs / name}").returncode == 0
    before = folder_bytes(runs)
    for extra in (["--overwrite"], []):
        assert_one_line(run_in_process("train.py", *TINY, "--seeds", "0", "--sweep-backend", "serial",
                                       f"run_dir={runs}", *extra),
                        "is not a sweep folder", "nothing was deleted", "another run_dir=")
    assert folder_bytes(runs) == before
    # an empty folder takes a sweep; a relative run_dir is recorded as an absolute path
    (tmp_path / "sw").mkdir()
    res = run_in_process("train.py", *TINY, "--seeds", "0", "--sweep-backend", "serial", "run_dir=sw", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (run,) = json.loads((tmp_path / "sw" / "sweep.json").read_text())["runs"]
    assert run["run_dir"] == str(tmp_path / "sw" / "seed0") and run["status"] == "finished"
    # what a sweep folder holds that no sweep wrote is not deleted either
    (tmp_path / "sw" / "notes.txt").write_text("mine")
    assert_one_line(run_in_process("train.py", *TINY, "--seeds", "0", "--sweep-backend", "serial",
                                   "run_dir=sw", "--overwrite", cwd=tmp_path), "'notes.txt'", "nothing was deleted")
    (tmp_path / "sw" / "notes.txt").unlink()
    res = run_in_process("train.py", *TINY, "--seeds", "1", "--sweep-backend", "serial", "run_dir=sw",
                         "--overwrite", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "sw").iterdir()) == ["seed1", "sweep.json"]


def test_a_refused_overwrite_of_a_sweep_deletes_nothing(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    sweep = tmp_path / "sw"
    assert run_in_process("train.py", *TINY, "--seeds", "0", "--sweep-backend", "serial",
                          f"run_dir={sweep}").returncode == 0
    before = folder_bytes(sweep)
    # the backend is refused (Ray with actors, or Ray missing) only after the old sweep is looked at
    res = run_in_process("train.py", *TINY, "--seeds", "0", "--sweep-backend", "ray", "distributed.actors=1",
                         f"run_dir={sweep}", "--overwrite")
    assert_one_line(res, "--sweep-backend ray")
    assert_one_line(run_in_process("train.py", *TINY, "--seeds", "0", "--sweep", "agent.lr=1e-4,x",
                                   f"run_dir={sweep}", "--overwrite"), "agent.lr")
    assert folder_bytes(sweep) == before


def test_sweep_values_may_be_lists_and_bad_yaml_is_one_line(tmp_path):
    from howsure.sweep import parse_grid
    from tests.conftest import assert_one_line, run_in_process

    assert parse_grid(["encoder.mlp.hidden_sizes=[64,64],[128]", "agent.lr=1e-4, 5e-4"]) == [
        ("encoder.mlp.hidden_sizes", ["[64,64]", "[128]"]), ("agent.lr", ["1e-4", "5e-4"])]
    assert parse_grid(["env.kwargs={a: 1, b: 2},{a: 3}"]) == [("env.kwargs", ["{a: 1, b: 2}", "{a: 3}"])]
    with pytest.raises(UserError, match="not valid YAML"):
        parse_grid(["encoder.mlp.hidden_sizes=[64,64"])
    assert_one_line(run_in_process("train.py", *TINY, "--seeds", "0", "--sweep", "encoder.mlp.hidden_sizes=[64,[128]",
                                   f"run_dir={tmp_path / 'sw'}"), "not valid YAML")
    assert_one_line(run_in_process("train.py", *TINY, "encoder.mlp.hidden_sizes=[64", f"run_dir={tmp_path / 'r'}"),
                    "encoder.mlp.hidden_sizes", "[64")
    assert not (tmp_path / "sw").exists() and not (tmp_path / "r").exists()
    sweep = tmp_path / "grid"
    res = run_in_process("train.py", *TINY, "--sweep", "encoder.mlp.hidden_sizes=[32,32],[16]",
                         "--sweep-backend", "serial", f"run_dir={sweep}")
    assert res.returncode == 0, res.stderr
    assert "- 16\n" in (sweep / "encoder.mlp.hidden_sizes=[16]__seed0" / "config.yaml").read_text()


def interrupt_sweep(tmp_path, *args):
    """A sweep in a subprocess, sent SIGINT once a run's loop has printed its first evaluation (so
    the loop, not the start-up, takes the signal): (exit code, stdout, stderr)."""
    import os
    import signal
    import threading

    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--config", "configs/dqn_cartpole.yaml",
                             "agent.learning_starts_steps=100", "eval.every_steps=300", "eval.episodes=2",
                             "eval.num_envs=2", "checkpoint_replay=false", "checkpoint_every_steps=0",
                             "torch_threads=1", "total_steps=1000000", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    watchdog = threading.Timer(150, proc.kill)  # a sweep that ignores the signal would train for ever
    watchdog.start()
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "eval return" in line:
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate()
    finally:
        watchdog.cancel()
    return proc.returncode, "".join(lines) + out, err


def test_ctrl_c_stops_a_serial_sweep_and_lists_what_to_resume(tmp_path):
    from howsure.checkpoint import load

    sweep = tmp_path / "sw"
    code, out, err = interrupt_sweep(tmp_path, "--seeds", "0,1,2", "--sweep-backend", "serial", f"run_dir={sweep}",
                                     "--quiet")
    assert code == 130, (out, err)
    assert "Traceback" not in err and "sweep done" not in out
    saved = json.loads((sweep / "sweep.json").read_text())
    assert saved["status"] == "interrupted"
    assert [r["status"] for r in saved["runs"]] == ["interrupted", "not started", "not started"]
    assert f"--resume {sweep / 'seed0'}" in out
    assert "seed 1: not started" in out and f"seed=2 run_dir={sweep / 'seed2'}" in out
    assert 0 < load(sweep / "seed0" / "checkpoints" / "latest.pt")["step"] < 1_000_000
    assert not (sweep / "seed1").exists() and not (sweep / "seed2").exists()


@pytest.mark.skipif(__import__("importlib").util.find_spec("ray") is None, reason="Ray is not installed")
def test_ctrl_c_stops_a_ray_sweep_and_says_which_runs_resume(tmp_path):
    from howsure.checkpoint import load

    sweep = tmp_path / "sw"
    code, out, err = interrupt_sweep(tmp_path, "--seeds", "0,1", "--sweep-backend", "ray", f"run_dir={sweep}")
    assert code == 130, (out, err)
    assert "Traceback" not in err
    saved = json.loads((sweep / "sweep.json").read_text())
    assert saved["status"] == "interrupted"
    statuses = {r["seed"]: r["status"] for r in saved["runs"]}
    # a task stops gracefully (with its checkpoint) as a rule; one that does not within the grace
    # period is stopped at once and must then be reported as started again, not as resumable
    assert set(statuses.values()) <= {"interrupted", "stopped", "not started"}
    for seed, status in statuses.items():
        run = sweep / f"seed{seed}"
        if status == "interrupted":  # the task stopped as under Ctrl-C: its checkpoint resumes it
            assert f"--resume {run}" in out and load(run / "checkpoints" / "latest.pt")["step"] > 0
        else:
            assert f"--resume {run}" not in out and f"seed={seed} run_dir={run}" in out


def test_a_grid_sweep_names_its_keys_for_the_hparams_table(tmp_path):
    from pathlib import Path

    from howsure import config, dashboards, wiring
    from howsure.sweep import run_sweep

    runs = run_sweep("configs/dqn_cartpole.yaml", [0], ["total_steps=200", "eval.every_steps=0", "log.quiet=true",
                                                        "checkpoint_replay=false", f"run_dir={tmp_path / 'sw'}"],
                     backend="serial", grid=[("agent.lr", ["1e-4", "5e-4"])])
    assert [r["status"] for r in runs] == ["finished", "finished"]
    for run in runs:
        cfg = wiring.load(Path(run["run_dir"]) / "config.yaml")
        assert cfg.log.hparams == ("agent.lr",)
        # 1e-4 is the schema's default: without log.hparams its HParams cell would be empty
        assert dashboards.hparams_of(cfg, config.to_dict(cfg))["agent.lr"] == cfg.agent.lr
