"""Sweeps: `python train.py --config X --seeds 0,1,2` trains one run per seed, each into its
own run directory under one sweep folder (SWEEP/seed0, SWEEP/seed1, ...), then writes
SWEEP/sweep.json. `--sweep agent.lr=1e-4,5e-4` (repeatable) adds a grid: every combination of the
values, each for every seed (SWEEP/agent.lr=1e-4__seed0, ...). Runs go in parallel as Ray tasks,
one CPU each, when Ray is importable (`pip install -e .[distributed]`), else one after another in
this process. Plot with `python -m howsure.plot SWEEP` (one curve per grid point); TensorBoard's
HPARAMS tab compares the points, since every run logs the config values it changed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

from howsure import config, rundir, wiring
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


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """['agent.lr=1e-4,5e-4', 'agent.gamma=0.9,0.99'] -> [('agent.lr', ['1e-4', '5e-4']), ...]."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not vals:
            raise UserError(f"--sweep {item!r} is not KEY=V1,V2,... (for example --sweep agent.lr=1e-4,5e-4)")
        if key.strip() in (k for k, _ in grid):
            raise UserError(f"--sweep names {key.strip()!r} twice; give each key once with all its values")
        if key.strip() in ("seed", "run_dir"):
            raise UserError(f"--sweep cannot vary {key.strip()!r}: use --seeds for seeds; "
                            "run_dir= names the sweep folder")
        if len(set(vals)) != len(vals):
            raise UserError(f"--sweep {item!r} repeats a value")
        grid.append((key.strip(), vals))
    return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Every combination of the grid's values, as override lists ([[]] for no grid)."""
    keys = [k for k, _ in grid]
    return [[f"{k}={v}" for k, v in zip(keys, combo)] for combo in itertools.product(*(v for _, v in grid))]


def run_name(point: list[str], seed: int) -> str:
    """seed3, or agent.lr=1e-4__seed3 for a grid point (a '/' in a value would make a subfolder)."""
    return "__".join([o.replace("/", "-") for o in point] + [f"seed{seed}"])


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

    cfg = wiring.from_yaml(cfg_yaml)
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


def run_sweep(config_path: str, seeds: list[int] | None, overrides: list[str], *, overwrite: bool = False,
              backend: Backend = "auto", grid: list[tuple[str, list[str]]] | None = None) -> list[dict]:
    """Train every seed (default: the config's) at every grid point; returns the runs' summaries."""
    base = wiring.load(config_path, overrides)
    grid = grid or []
    points = grid_points(grid)
    # every point's config is checked (keys, types, ranges) before anything is deleted or trained
    point_cfgs = [wiring.load(config_path, overrides + point) if point else base for point in points]
    seeds = [base.seed] if seeds is None else seeds
    from howsure import envs

    for point_cfg in [base, *point_cfgs]:  # a grid may vary env.id
        envs.register_third_party(point_cfg.env.register)
        envs.check_id(point_cfg.env.id)
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
    runs: list[tuple[dict, Path, str]] = []
    for point, point_cfg in zip(points, point_cfgs):
        for seed in seeds:
            run_dir = sweep / run_name(point, seed)
            run_dir.mkdir(parents=True, exist_ok=True)
            cfg = dataclasses.replace(
                point_cfg, seed=seed, run_dir=str(run_dir),
                log=dataclasses.replace(point_cfg.log, quiet=point_cfg.log.quiet or how == "ray"),
                # one thread per run: parallel runs each get a core, not all cores
                torch_threads=1 if how == "ray" and point_cfg.torch_threads == 0 else point_cfg.torch_threads)
            runs.append(({"seed": seed, **({"overrides": point} if grid else {})}, run_dir, config.to_yaml(cfg)))
    what = f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"
    if grid:
        what = f"{len(points)} grid points x {what}"
    print(f"sweep of {what} into {sweep}, {'in parallel as Ray tasks' if how == 'ray' else 'one after another'}")
    t0 = time.perf_counter()
    summaries = _run_ray(runs) if how == "ray" else [_run_serial(k, d, y) for k, d, y in runs]
    order = {d.name: i for i, (_, d, _) in enumerate(runs)}  # grid point, then seed, as given
    summaries.sort(key=lambda s: order.get(Path(s["run_dir"]).name, len(order)))
    (sweep / "sweep.json").write_text(json.dumps(
        {"config": str(config_path), "overrides": overrides, "seeds": seeds,
         "grid": {k: v for k, v in grid}, "backend": how,
         "wall_seconds": round(time.perf_counter() - t0, 1), "runs": summaries}, indent=2))
    print(f"\nsweep done in {time.perf_counter() - t0:.0f} s: {sweep / 'sweep.json'}")
    print(f"  plot: python -m howsure.plot {sweep}")
    return summaries


def _fmt(summary: dict) -> str:
    ev = summary.get("best_eval_return")
    point = " ".join(summary.get("overrides", []))
    return (f"{point + ' ' if point else ''}seed {summary['seed']}: {summary['step']:,} steps, best eval return "
            f"{'-' if ev is None else f'{ev:.2f}'}  ({summary['run_dir']})")


def _run_serial(key: dict, run_dir: Path, cfg_yaml: str) -> dict:
    summary = {**key, **_train_one(cfg_yaml, str(run_dir))}
    print(_fmt(summary))
    return summary


def _run_ray(runs: list[tuple[dict, Path, str]]) -> list[dict]:
    from howsure.distributed import connect

    started = connect(os.environ.get("RAY_ADDRESS", ""))  # sets Ray's logging options, then imports it
    import ray

    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_train_one)
        pending = {task.remote(y, str(d.resolve())): key for key, d, y in runs}
        out = []
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            key = pending.pop(ref)
            try:
                summary = {**key, **ray.get(ref)}
            except ray.exceptions.RayTaskError as err:
                name = " ".join(key.get("overrides", []) + [f"seed {key['seed']}"])
                raise UserError(f"{name} failed: {str(err).strip().splitlines()[-1][:200]}") from None
            print(_fmt(summary))
            out.append(summary)
        return out
    finally:
        if started:
            ray.shutdown()
