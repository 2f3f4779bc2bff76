"""Environment steps per second on Pong with 0 (single process), 1, 2 and 4 Ray actors, plus the
per-actor and learner costs that a model of multi-machine throughput needs. Prints JSON.

    nice -n 10 python benchmarks/scaling.py [--actors 0,1,2,4] [--steps 2000] [--out FILE.json]

Each setting trains DQN (Nature CNN, train_every_steps=4, batch 32) on ALE/Pong-v5 for --steps
agent steps; the rate is the median of the loop's own charts/SPS over its log intervals (the first
one, with start-up and replay warm-up, is dropped). Replay is the uniform kind (distributed
acting needs per-transition storage), small, so the run fits in a small machine's memory.
Costs measured in this process with one thread: an actor's seconds per agent step (env step +
forward pass, from the actors' own chunk timings) and the learner's seconds per update and per
stored transition.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

from benchmarks.report import positive_int  # noqa: E402
from howsure import config, machine, wiring  # noqa: E402
from howsure.errors import cli_main  # noqa: E402
from howsure.logger import read_scalars  # noqa: E402


def pong_config(run_dir: Path, steps: int, actors: int, cores: int) -> config.Config:
    over = [f"run_dir={run_dir}", f"total_steps={steps}", "torch_threads=1", "log.quiet=true",
            "log.every_steps=250", "eval.every_steps=0", "checkpoint_every_steps=0", "checkpoint_replay=false",
            "env.num_envs=1", "replay.kind=uniform", "replay.capacity_steps=5000",
            "agent.learning_starts_steps=250", "agent.train_every_steps=4", "agent.batch_size=32",
            f"distributed.actors={actors}", "distributed.chunk_steps=50", "distributed.weights_every_updates=25",
            # as many actors as cores get a whole one; more share them (Ray CPUs are scheduling tokens)
            f"distributed.cpus_per_actor={min(1.0, cores / max(actors, 1)):.3f}"]
    return wiring.load(ROOT / "configs" / "dqn_pong.yaml", over)


def median_sps(run_dir: Path) -> float:
    sps = [v for _, v in read_scalars(run_dir).get("charts/SPS", [])]
    return float(np.median(sps[1:] if len(sps) > 1 else sps))


def learner_costs(cfg: config.Config, updates: int = 30) -> dict:
    """Seconds per gradient update (batch 32) and per stored transition, one thread."""
    from howsure.agents import make_agent
    from howsure.replay import make_replay

    from howsure import envs

    torch.set_num_threads(1)
    env = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, env)
    env.close()
    agent = make_agent(cfg, spec)
    buffer = make_replay(cfg.replay, spec, cfg.agent.gamma, seed=0)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 255, size=(50, 1, *spec.obs_shape), dtype=np.uint8)
    t0 = time.perf_counter()
    for t in range(50):
        buffer.add(obs[t], np.zeros(1, np.int64), np.zeros(1, np.float32), obs[(t + 1) % 50],
                   np.zeros(1, bool), np.zeros(1, bool))
    add_s = (time.perf_counter() - t0) / 50
    for _ in range(3):
        agent.update(buffer.sample(32))
    t0 = time.perf_counter()
    for _ in range(updates):
        agent.update(buffer.sample(32))
    return {"seconds_per_update": (time.perf_counter() - t0) / updates, "seconds_per_stored_step": add_s}


@cli_main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actors", default="0,1,2,4")
    p.add_argument("--steps", type=positive_int, default=2000, help="agent steps per setting")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    settings = [int(a) for a in args.actors.split(",")]
    started = machine.describe()
    results: dict = {"env": "ALE/Pong-v5", "steps_per_setting": args.steps, "settings": []}
    ray_started = False
    with tempfile.TemporaryDirectory() as tmp:
        for n in settings:
            run_dir = Path(tmp) / f"actors{n}"
            cfg = pong_config(run_dir, args.steps, n, cores)
            run_dir.mkdir()
            t0 = time.perf_counter()
            actor_seconds: list[float] = []
            if n == 0:
                from howsure import training as train

                train.train(cfg, run_dir)
            else:
                from howsure.distributed import connect, train_distributed

                if not ray_started:
                    ray_started = True
                    connect("")  # one local Ray for every setting; start-up is not measured
                    t0 = time.perf_counter()
                train_distributed(cfg, run_dir,
                                  on_chunk=lambda c, _, out=actor_seconds: out.append(c["seconds"] / c["steps"]))
            row = {"actors": n, "env_steps_per_s": round(median_sps(run_dir), 1),
                   "wall_seconds": round(time.perf_counter() - t0, 1)}
            if actor_seconds:
                row["actor_seconds_per_step_median"] = float(np.median(actor_seconds[1:] or actor_seconds))
            results["settings"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        results["learner"] = learner_costs(pong_config(Path(tmp) / "costs", args.steps, 0, cores))
    if ray_started:
        import ray

        ray.shutdown()
    results["machine"] = machine.ended(started)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
