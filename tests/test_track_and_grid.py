"""Grid sweeps (train.py --sweep KEY=V1,V2) and experiment tracking (train.py --track, wandb offline)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from howsure import wiring
from howsure.errors import UserError
from howsure.logger import read_scalars
from howsure.sweep import grid_points, parse_grid, run_name
from tests.conftest import ROOT, assert_one_line, run_cli, run_in_process

TINY = ("total_steps=400", "agent.learning_starts_steps=100", "eval.every_steps=200", "eval.episodes=2",
        "eval.num_envs=2", "log.every_steps=200", "checkpoint_every_steps=0", "checkpoint_replay=false",
        "torch_threads=1")


def test_grid_is_every_combination_in_order():
    grid = parse_grid(["agent.lr=1e-4,5e-4", "agent.gamma=0.9, 0.99"])
    assert grid == [("agent.lr", ["1e-4", "5e-4"]), ("agent.gamma", ["0.9", "0.99"])]
    assert grid_points(grid) == [["agent.lr=1e-4", "agent.gamma=0.9"], ["agent.lr=1e-4", "agent.gamma=0.99"],
                                 ["agent.lr=5e-4", "agent.gamma=0.9"], ["agent.lr=5e-4", "agent.gamma=0.99"]]
    assert grid_points([]) == [[]]
    assert run_name([], 3) == "seed3"
    assert run_name(["env.id=ALE/Pong-v5"], 0) == "env.id=ALE-Pong-v5__seed0"  # no subfolder


@pytest.mark.parametrize("items, needle", [
    (["agent.lr"], "is not KEY=V1,V2"),
    (["agent.lr="], "is not KEY=V1,V2"),
    (["agent.lr=1,2", "agent.lr=3"], "twice"),
    (["seed=1,2"], "use --seeds"),
    (["agent.lr=1e-3,1e-3"], "repeats a value"),
])
def test_grid_syntax_errors_name_the_fix(items, needle):
    with pytest.raises(UserError, match=needle):
        parse_grid(items)


def test_grid_sweep_trains_every_point_and_seed(tmp_path):
    from howsure.cli.train import main

    sweep = tmp_path / "grid"
    assert main(["--config", "configs/dqn_cartpole.yaml", "--sweep", "agent.lr=0.001,0.0001", "--seeds", "0,1",
                 "--sweep-backend", "serial", f"run_dir={sweep}", "--quiet", *TINY]) == 0
    summary = json.loads((sweep / "sweep.json").read_text())
    assert summary["grid"] == {"agent.lr": ["0.001", "0.0001"]}
    names = [Path(r["run_dir"]).name for r in summary["runs"]]
    assert names == ["agent.lr=0.001__seed0", "agent.lr=0.001__seed1", "agent.lr=0.0001__seed0",
                     "agent.lr=0.0001__seed1"]
    for run in summary["runs"]:
        cfg = wiring.load(str(Path(run["run_dir"]) / "config.yaml"))
        assert (cfg.agent.lr, cfg.seed) == (float(run["overrides"][0].split("=")[1]), run["seed"])
        assert [s for s, _ in read_scalars(run["run_dir"])["eval/episodic_return"]] == [200, 400]
    # the plot groups by config minus seed: one curve per learning rate, two runs each
    from howsure.plot import main as plot_main

    assert plot_main([str(sweep), "--reps", "50"]) == 0
    labels = {(r["label"], r["runs"]) for r in json.loads((sweep / "curves.json").read_text())
              if r["tag"] == "eval/episodic_return"}
    assert labels == {("agent.lr=0.001", 2), ("agent.lr=0.0001", 2)}


def test_a_misspelt_grid_key_is_refused_before_anything_trains(tmp_path):
    res = run_in_process("train.py", "--config", "configs/dqn_cartpole.yaml", "--sweep", "agent.lrr=1e-3,1e-4",
                         f"run_dir={tmp_path / 'g'}")
    assert_one_line(res, "agent.lrr", "agent.lr")
    assert not (tmp_path / "g").exists()


def test_track_without_wandb_is_one_line_and_creates_nothing(tmp_path, monkeypatch, capsys):
    from howsure.cli.train import main

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    with pytest.raises(SystemExit) as exit_:
        main(["--config", "configs/dqn_cartpole.yaml", "--track", f"run_dir={tmp_path / 'run'}", *TINY])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "pip install" in err and "wandb" in err
    assert not (tmp_path / "run").exists()


def wandb_records(path: Path):
    """The protobuf records of a .wandb file: wandb's LevelDB-style log (a 7-byte file header, then
    32 KiB blocks of records, each with a 7-byte header: crc32, length, type full/first/middle/last).
    Read here directly: wandb 0.2x+ no longer ships a Python reader."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a wandb run file"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # too little left in the block for a header: padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zero fill at the end of a block
            pos += block - pos % block
            continue
        payload = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):
            yield pending
            pending = b""


def wandb_history(run_dir: Path) -> dict[str, list[float]]:
    """Every numeric history value of the offline wandb run under run_dir."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    out: dict[str, list[float]] = {}
    for data in wandb_records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                value = json.loads(item.value_json)
                if isinstance(value, (int, float)):
                    out.setdefault(key, []).append(float(value))
    return out


def test_track_mirrors_the_scalars_to_an_offline_wandb_run(tmp_path):
    pytest.importorskip("wandb")
    run = tmp_path / "run"
    res = run_cli("train.py", "--config", "configs/dqn_cartpole.yaml", "--track", f"run_dir={run}", "--quiet",
                  *TINY, env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "track: true" in (run / "config.yaml").read_text()
    history = wandb_history(run)
    tensorboard = read_scalars(run)
    for tag in ("eval/episodic_return", "charts/episodic_return", "losses/td_loss"):
        assert history[tag] == pytest.approx([v for _, v in tensorboard[tag]]), tag


def test_an_unknown_env_in_one_grid_point_is_refused_before_anything_trains(tmp_path):
    res = run_in_process("train.py", "--config", "configs/dqn_cartpole.yaml", "--sweep",
                         "env.id=CartPole-v1,CartPolf-v1", f"run_dir={tmp_path / 'g'}")
    assert_one_line(res, "CartPolf-v1")
    assert not (tmp_path / "g").exists()


def test_track_reads_a_run_folder_under_the_cwd_once(tmp_path):
    """wandb's TensorBoard hook watches the run folder, and wandb keeps its own files in RUN_DIR/wandb:
    with wandb.init(sync_tensorboard=True) and the run folder under the cwd, wandb linked each event
    file into RUN_DIR/wandb/<run>/files/, read the link as a new event file, linked that, ... (dozens
    of nested copies, the whole stream in the history as many times)."""
    pytest.importorskip("wandb")
    res = run_in_process("train.py", "--config", str(ROOT / "configs/dqn_cartpole.yaml"), "--track",
                         "run_dir=run", "--quiet", *TINY, cwd=tmp_path,
                         env={"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"})
    assert res.returncode == 0, res.stderr[-2000:]
    run = tmp_path / "run"
    assert len(list(run.glob("events.out.tfevents*"))) == 1
    assert [p for p in (run / "wandb").rglob("*") if "tfevents" in p.name] == []
    history, tensorboard = wandb_history(run), read_scalars(run)
    for tag in ("eval/episodic_return", "charts/episodic_return", "losses/td_loss"):
        assert history[tag] == pytest.approx([v for _, v in tensorboard[tag]]), tag  # each value once
    # howsure.plot never takes what wandb keeps in a run's wandb/ folder for runs of their own
    from howsure.plot import find_runs

    nested = next(run.glob("wandb/offline-run-*")) / "files" / "run"
    nested.mkdir(parents=True)
    (nested / next(run.glob("events.out.tfevents*")).name).symlink_to(next(run.glob("events.out.tfevents*")))
    assert find_runs(tmp_path) == [run]
