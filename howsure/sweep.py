"""Seed sweeps: `python train.py --config X --seeds 0,1,2` trains one run per seed, each into its
own run directory under one sweep folder (SWEEP/seed0, SWEEP/seed1, ...), then writes
SWEEP/sweep.json. Seeds run in parallel as Ray tasks, one CPU each, when Ray is importable
(`pip install -e .[distributed]`), else one after another in this process.
Plot the sweep with `python -m howsure.plot SWEEP`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

from howsure import config, rundir
from howsure.errors import UserError

Backend = Literal["auto", "ray", "serial"]


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' (inclusive) or a mix: '0-2,7'."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if "-" in part:
                lo, hi = part.split("-", 1)
                seeds += list(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"--seeds {text!r} is not a list of integers (for example --seeds 0,1,2 or 0-4)") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r} must name at least one seed, each once")
    return seeds


def sweep_dir_for(cfg: config.Config) -> Path:
    if cfg.run_dir:
        return Path(cfg.run_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / "sweeps" / f"{cfg.env.id.replace('/', '-')}__{cfg.agent.name}__{stamp}"


def resolve_backend(backend: Backend, cfg: config.Config) -> str:
    has_ray = importlib.util.find_spec("ray") is not None
    if backend == "ray" and not has_ray:
        raise UserError("--sweep-backend ray needs Ray: pip install -e '.[distributed]'")
    if cfg.distributed.actors > 0:
        # Each run already spreads over Ray actors; running those runs side by side would
        # oversubscribe the cluster, so seeds go one after another.
        if backend == "ray":
            raise UserError("--sweep-backend ray with distributed.actors > 0: use one or the other")
        return "serial"
    if backend == "auto":
        return "ray" if has_ray else "serial"
    return backend


def _train_one(cfg_yaml: str, run_dir: str) -> dict:
    """One seed's run; also the body of the Ray task (so it only takes plain values)."""
    from howsure import training as train_mod

    cfg = config.from_yaml(cfg_yaml)
    runner = train_mod.train
    if cfg.distributed.actors > 0:
        from howsure.distributed import train_distributed as runner
    rundir.lock(Path(run_dir))  # one process per run directory, as in train.py
    try:
        return runner(cfg, Path(run_dir))  # writes config.yaml once its checks pass
    finally:
        rundir.release(Path(run_dir))


def is_sweep_dir(path: Path) -> bool:
    """A folder run_sweep made: sweep.json, or nothing but (empty or) run directories."""
    if (path / "sweep.json").is_file():
        return True
    return all(p.is_dir() and (rundir.is_run_dir(p) or not any(p.iterdir())) for p in path.iterdir())


def run_sweep(config_path: str, seeds: list[int], overrides: list[str], *, overwrite: bool = False,
              backend: Backend = "auto") -> list[dict]:
    base = config.load(config_path, overrides)
    import envs

    envs.register_third_party(base.env.register)
    envs.check_id(base.env.id)
    sweep = sweep_dir_for(base)
    if sweep.exists() and any(sweep.iterdir()):
        if not overwrite:
            raise UserError(f"sweep directory {str(sweep)!r} already exists; pass --overwrite or another run_dir=")
        if not is_sweep_dir(sweep):
            raise UserError(f"--overwrite deletes only sweep folders and {str(sweep)!r} is not one (no sweep.json, "
                            "not only run directories); nothing was deleted: pass another run_dir=")
        for run in sweep.iterdir():
            if run.is_dir():
                rundir.check_free(run)  # a seed still training is named by its PID
        shutil.rmtree(sweep)
    how = resolve_backend(backend, base)
    runs: list[tuple[int, Path, str]] = []
    for seed in seeds:
        run_dir = sweep / f"seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = dataclasses.replace(base, seed=seed, run_dir=str(run_dir),
                                  log=dataclasses.replace(base.log, quiet=base.log.quiet or how == "ray"),
                                  # one thread per run: parallel runs each get a core, not all cores
                                  torch_threads=1 if how == "ray" and base.torch_threads == 0 else base.torch_threads)
        runs.append((seed, run_dir, config.to_yaml(cfg)))
    print(f"sweep of {len(seeds)} seeds ({', '.join(map(str, seeds))}) into {sweep}, "
          f"{'in parallel as Ray tasks' if how == 'ray' else 'one after another'}")
    t0 = time.perf_counter()
    summaries = _run_ray(runs) if how == "ray" else [_run_serial(s, d, y) for s, d, y in runs]
    summaries.sort(key=lambda s: s["seed"])
    (sweep / "sweep.json").write_text(json.dumps(
        {"config": str(config_path), "overrides": overrides, "seeds": seeds, "backend": how,
         "wall_seconds": round(time.perf_counter() - t0, 1), "runs": summaries}, indent=2))
    print(f"\nsweep done in {time.perf_counter() - t0:.0f} s: {sweep / 'sweep.json'}")
    print(f"  plot: python -m howsure.plot {sweep}")
    return summaries


def _fmt(summary: dict) -> str:
    ev = summary.get("best_eval_return")
    return (f"seed {summary['seed']}: {summary['step']:,} steps, best eval return "
            f"{'-' if ev is None else f'{ev:.2f}'}  ({summary['run_dir']})")


def _run_serial(seed: int, run_dir: Path, cfg_yaml: str) -> dict:
    summary = {"seed": seed, **_train_one(cfg_yaml, str(run_dir))}
    print(_fmt(summary))
    return summary


def _run_ray(runs: list[tuple[int, Path, str]]) -> list[dict]:
    import ray

    from howsure.distributed import connect

    started = connect(os.environ.get("RAY_ADDRESS", ""))
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_train_one)
        pending = {task.remote(y, str(d.resolve())): s for s, d, y in runs}
        out = []
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            seed = pending.pop(ref)
            try:
                summary = {"seed": seed, **ray.get(ref)}
            except ray.exceptions.RayTaskError as err:
                raise UserError(f"seed {seed} failed: {str(err).strip().splitlines()[-1][:200]}") from None
            print(_fmt(summary))
            out.append(summary)
        return out
    finally:
        if started:
            ray.shutdown()
