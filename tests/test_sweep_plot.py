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
