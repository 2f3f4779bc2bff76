"""Ape-X style acting on Ray: experience from every actor reaches the learner's replay, actors act
with the learner's fresh weights, a killed actor is re-created and training completes.

One local Ray (2 CPUs) is shared by the whole module: starting Ray costs several seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys

import pytest
from safetensors import safe_open

from howsure import checkpoint, config, wiring
from howsure.distributed import ape_x_epsilons
from howsure.logger import read_scalars

# one xdist worker runs this module, so its module-scoped run fixture trains once
pytestmark = pytest.mark.xdist_group("test_distributed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ape_x_epsilons_follow_the_paper():
    """eps_i = 0.4 ** (1 + i / (N - 1) * 7): 0.4 for the first actor, 0.4 ** 8 for the last."""
    eps = ape_x_epsilons(4, 0.4, 7.0)
    assert eps[0] == pytest.approx(0.4)
    assert eps[1] == pytest.approx(0.4 ** (1 + 7 / 3))
    assert eps[3] == pytest.approx(0.4 ** 8)
    assert ape_x_epsilons(1) == [0.4]


def test_single_process_training_never_imports_ray():
    code = ("import sys, train; "
            "rc = train.main(['--config', 'configs/tabular_nchain.yaml', 'total_steps=200', "
            f"'run_dir={os.path.join('/tmp', 'howsure-noray-%d' % os.getpid())}', 'eval.every_steps=0', "
            "'--overwrite', '--quiet']); "
            "assert rc == 0; assert 'ray' not in sys.modules, 'ray was imported'")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert res.returncode == 0, res.stderr[-2000:]


needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install -e '.[distributed]'")


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module, as howsure.distributed.connect starts it, plus a hook that
    registers the flaky test env in every worker process."""
    import logging

    import ray

    from tests import flaky_env

    flaky_env.register()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             runtime_env={"env_vars": {"PYTHONPATH": ROOT},
                          "worker_process_setup_hook": "tests.flaky_env.register"})
    yield
    ray.shutdown()


def cartpole(run_dir, **over) -> config.Config:
    items = {"total_steps": 2000, "run_dir": str(run_dir), "torch_threads": 1, "distributed.actors": 2,
             "distributed.chunk_steps": 64, "distributed.weights_every_updates": 10,
             "distributed.cpus_per_actor": 0.5, "agent.learning_starts_steps": 500,
             "agent.train_every_steps": 4, "eval.every_steps": 0, "log.every_steps": 500,
             "checkpoint_replay": False, "log.quiet": True, **over}
    return wiring.load(os.path.join(ROOT, "configs/dqn_cartpole.yaml"), [f"{k}={v}" for k, v in items.items()])


@needs_ray
def test_two_actors_fill_the_replay_and_act_with_fresh_weights(ray_session, tmp_path):
    from howsure.distributed import train_distributed

    seen: list[dict] = []
    published: dict[int, float] = {}

    def watch(chunk: dict, learner: dict) -> None:
        seen.append(chunk)
        published.update(learner["published"])

    # one actor's process is seconds slower to start than the other's, as on a busy machine
    slow = {"env.id": "howsure-test/FlakyCartPole-v0", "env.kwargs.slow_flag": str(tmp_path / "slow-actor"),
            "env.kwargs.slow_start_s": 5}
    summary = train_distributed(cartpole(tmp_path, **{"eval.every_steps": 1000, "eval.episodes": 2,
                                                      "eval.num_envs": 2, **slow}), tmp_path, on_chunk=watch)
    assert summary["step"] >= 2000
    assert (tmp_path / "slow-actor").exists(), "no actor started slowly"
    # experience from both actors reached the replay, the slow one's too, and nothing else did
    assert all(n > 0 for n in summary["actor_steps"]), summary["actor_steps"]
    assert summary["replay_size"] == sum(summary["actor_steps"]) == summary["step"]
    assert {c["actor"] for c in seen} == {0, 1}
    assert len({c["pid"] for c in seen}) == 2  # two processes, not one
    # the weights each actor acts with advance, and are exactly the learner's published ones
    for actor in (0, 1):
        mine = [c for c in seen if c["actor"] == actor]
        versions = [c["version"] for c in mine]
        assert versions == sorted(versions) and versions[-1] > versions[0] >= 0, versions
        for c in mine:
            if c["version"] in published:
                assert c["checksum"] == pytest.approx(published[c["version"]], rel=1e-9, abs=1e-9)
        assert mine[-1]["checksum"] != pytest.approx(mine[0]["checksum"])
    # the learner logs the single-process tags
    scalars = read_scalars(tmp_path)
    for tag in ("charts/episodic_return", "losses/td_loss", "charts/SPS", "distributed/weights_version"):
        assert tag in scalars, tag
    assert (tmp_path / "checkpoints" / "final.pt").is_file()
    # the evaluations keep the best agent as train.py does, and the export names its step
    best = checkpoint.load(tmp_path / "checkpoints" / "best.pt")
    assert best["loop"]["best_eval"] == summary["best_eval_return"] is not None
    assert best["step"] == best["loop"]["evals"][-1][0] <= summary["step"]  # saved at the evaluation that set it
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as fh:
        assert json.loads(fh.metadata()["step"]) == summary["step"]


@needs_ray
def test_a_distributed_run_writes_what_a_local_run_writes(ray_session, tmp_path):
    """One loop serves both: the same checkpoints and the same TensorBoard tags, plus distributed/*."""
    from howsure.distributed import train_distributed
    from howsure.training import train

    over = {"total_steps": 1000, "eval.every_steps": 500, "eval.episodes": 2, "eval.num_envs": 2,
            "distributed.exploration": "agent"}
    runs = {"distributed": tmp_path / "distributed", "local": tmp_path / "local"}
    for run in runs.values():
        run.mkdir()
    train_distributed(cartpole(runs["distributed"], **over), runs["distributed"])
    train(cartpole(runs["local"], **over, **{"distributed.actors": 0}), runs["local"])
    tags = {}
    for name, run in runs.items():
        assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.pt", "final.pt", "latest.pt"}, name
        assert (run / "model.safetensors").is_file() and (run / "summary.json").is_file(), name
        tags[name] = set(read_scalars(run))
    assert {"distributed/weights_version", "distributed/actor_restarts"} <= tags["distributed"]
    assert {t for t in tags["distributed"] if not t.startswith("distributed/")} == tags["local"]
    assert {"charts/episodic_return", "charts/epsilon", "eval/episodic_return", "losses/td_loss"} <= tags["local"]


@needs_ray
def test_the_wall_clock_cap_ends_a_distributed_run(ray_session, tmp_path):
    from howsure.distributed import train_distributed

    summary = train_distributed(cartpole(tmp_path, total_steps=1_000_000, time_limit_minutes=0.001), tmp_path)
    assert summary["stopped_at_time_limit_step"] == summary["step"] < 1_000_000
    assert (tmp_path / "checkpoints" / "final.pt").is_file()


@needs_ray
def test_a_killed_or_crashing_actor_is_recreated_and_training_completes(ray_session, tmp_path):
    import ray

    from howsure.distributed import train_distributed

    seen: list[dict] = []
    killed: dict[str, int] = {}

    def kill_once(chunk: dict, learner: dict) -> None:
        seen.append(chunk)
        if not killed and len(seen) >= 3 and chunk["actor"] == 0:
            killed["pid"], killed["replay"] = chunk["pid"], learner["replay_size"]
            os.kill(chunk["pid"], signal.SIGKILL)  # a real crash of the actor's process
        elif killed and "new_pid" not in killed:
            # once the learner has noticed, actor 0 is a new process that answers
            pool = learner["pool"]
            if pool.restarts:
                try:
                    killed["new_pid"] = ray.get(pool.handles[0].ping.remote())
                except ray.exceptions.ActorDiedError:
                    pass  # the env crash took the new actor down too: ask its successor at the next chunk

    # besides the kill, the first env to reach its 600th step raises (an exception inside an env)
    flag = tmp_path / "env-crashed"
    cfg = cartpole(tmp_path, total_steps=2000, **{"env.id": "howsure-test/FlakyCartPole-v0",
                                                  "env.kwargs.crash_flag": str(flag),
                                                  "env.kwargs.crash_at_step": 600})
    summary = train_distributed(cfg, tmp_path, on_chunk=kill_once)
    assert killed, "the test never killed an actor"
    assert flag.exists(), "the env never raised"
    assert summary["step"] >= 2000 and not summary["interrupted"]
    assert summary["actor_restarts"] >= 2  # the killed process and the env exception
    assert killed.get("new_pid") not in (None, killed["pid"]), killed
    # nothing that was in the replay was lost (capacity is far above the run length)
    assert summary["replay_size"] == summary["step"] >= killed["replay"]
    restarts = read_scalars(tmp_path)["distributed/actor_restarts"]
    assert max(v for _, v in restarts) >= 1


@needs_ray
def test_too_few_cpus_is_a_user_error(ray_session, tmp_path):
    from howsure.distributed import train_distributed
    from howsure.errors import UserError

    with pytest.raises(UserError, match="cpus_per_actor"):
        train_distributed(cartpole(tmp_path, **{"distributed.actors": 8, "distributed.cpus_per_actor": 1}),
                          tmp_path)


@needs_ray
def test_a_sweep_runs_its_seeds_as_ray_tasks(ray_session, tmp_path):
    """--seeds with Ray installed (the default backend): each seed trains in a Ray worker process."""
    from howsure.sweep import run_sweep

    sweep = tmp_path / "sweep"
    over = [f"run_dir={sweep}", "total_steps=600", "agent.learning_starts_steps=200", "eval.every_steps=300",
            "eval.episodes=2", "eval.num_envs=2", "log.every_steps=300", "checkpoint_replay=false",
            "torch_threads=1", "log.quiet=true"]
    summaries = run_sweep(os.path.join(ROOT, "configs/dqn_cartpole.yaml"), [0, 1], over)
    saved = json.loads((sweep / "sweep.json").read_text())
    assert saved["backend"] == "ray" and [r["seed"] for r in saved["runs"]] == [0, 1]
    assert [s["step"] for s in summaries] == [600, 600]
    for seed in (0, 1):
        run = sweep / f"seed{seed}"
        assert (run / "checkpoints" / "final.pt").is_file() and f"seed: {seed}" in (run / "config.yaml").read_text()
        assert [s for s, _ in read_scalars(run)["eval/episodic_return"]] == [300, 600]
        (events,) = run.glob("events.out.tfevents.*")
        assert int(events.name.split(".")[-2]) != os.getpid()  # written by a Ray worker, not this process


def test_an_unreachable_head_is_one_line_and_leaves_a_run_that_can_start_again(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    run = tmp_path / "run"
    argv = ["--config", "configs/dqn_cartpole.yaml", "distributed.actors=1", "distributed.address=127.0.0.1:1",
            "total_steps=300", f"run_dir={run}", "--quiet"]
    for _ in range(2):  # the second start is refused for the same reason, not for a half-made run
        assert_one_line(run_in_process("train.py", *argv), "cannot reach the Ray head at '127.0.0.1:1'")
    assert not (run / "config.yaml").exists() and not list(run.glob("events.*"))


def test_more_actors_than_cpus_is_refused_before_the_run_folder_is_made(tmp_path):
    from tests.conftest import assert_one_line, run_in_process

    run = tmp_path / "run"
    res = run_in_process("train.py", "--config", "configs/dqn_cartpole.yaml", "distributed.actors=1000",
                         "total_steps=300", f"run_dir={run}", "--quiet", env={"RAY_ADDRESS": ""})
    assert_one_line(res, "1000 actors", "need 1000 Ray CPUs")
    assert not run.exists()
