"""Sweeps: `python train.py --config X --seeds 0,1,2` trains one run per seed, each into its
own run directory under one sweep folder (SWEEP/seed0, SWEEP/seed1, ...); SWEEP/sweep.json, written
before the first run and again at the end, records each run's state (--overwrite replaces only a
folder holding one). Ctrl-C stops the whole sweep: a run in its loop checkpoints, no further run
starts, and the runs to --resume (or to start) are listed; the exit code is 130.
`--sweep agent.lr=1e-4,5e-4` (repeatable; a list value keeps its commas: hidden_sizes=[64,64],[128])
adds a grid: every combination of the values, each for every seed (SWEEP/agent.lr=1e-4__seed0, ...).
Runs go in parallel as Ray tasks, one CPU each, when Ray is importable (`pip install -e .[distributed]`),
else one after another in this process. Plot with `python -m howsure.plot SWEEP` (one curve per grid
point); TensorBoard's HPARAMS tab compares the points, since every run logs the config values it changed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import shlex
import shutil
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml

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


def split_values(text: str) -> list[str]:
    """'1e-4,5e-4' -> ['1e-4', '5e-4']; commas inside [] or {} (a list or mapping value) do not split:
    '[64,64],[128]' -> ['[64,64]', '[128]']."""
    values, depth, part = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(depth - 1, 0)
        if ch == "," and depth == 0:
            values.append(part)
            part = ""
        else:
            part += ch
    return [v.strip() for v in [*values, part] if v.strip()]


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """['agent.lr=1e-4,5e-4', 'agent.gamma=0.9,0.99'] -> [('agent.lr', ['1e-4', '5e-4']), ...]."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        vals = split_values(values)
        if not sep or not key.strip() or not vals:
            raise UserError(f"--sweep {item!r} is not KEY=V1,V2,... (for example --sweep agent.lr=1e-4,5e-4)")
        if key.strip() in (k for k, _ in grid):
            raise UserError(f"--sweep names {key.strip()!r} twice; give each key once with all its values")
        if key.strip() in ("seed", "run_dir"):
            raise UserError(f"--sweep cannot vary {key.strip()!r}: use --seeds for seeds; "
                            "run_dir= names the sweep folder")
        if len(set(vals)) != len(vals):
            raise UserError(f"--sweep {item!r} repeats a value")
        for v in vals:
            try:
                yaml.safe_load(v)
            except yaml.YAMLError as err:
                why = getattr(err, "problem", None) or type(err).__name__
                raise UserError(f"--sweep {item!r}: the value {v!r} is not valid YAML ({why}); close its "
                                "brackets and quotes, e.g. --sweep 'encoder.mlp.hidden_sizes=[64,64],[128]'") from None
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


SWEEP_FILE = "sweep.json"
# what a sweep folder holds besides its runs: sweep.json, and the plot of it (python -m howsure.plot SWEEP)
SWEEP_FILES = (SWEEP_FILE, "curves.png", "curves.json")


def _train_one(cfg_yaml: str, run_dir: str) -> dict:
    """One seed's run; also the body of the Ray task (so it only takes plain values)."""
    from howsure import training as train_mod

    cfg = wiring.from_yaml(cfg_yaml)
    runner = train_mod.train
    if cfg.distributed.actors > 0:
        from howsure.distributed import train_distributed as runner
    path = Path(run_dir)
    made = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    rundir.lock(path)  # one process per run directory, as in train.py
    try:
        return runner(cfg, path)  # writes config.yaml once its checks pass
    except BaseException:
        rundir.discard_unused(path, made)  # a run stopped before it wrote anything leaves no folder
        raise
    finally:
        rundir.release(path)


def is_sweep_dir(path: Path) -> bool:
    """A folder run_sweep made: it writes sweep.json there before the first run starts. A folder of
    run directories without one (runs/, where single runs go by default) is not a sweep."""
    try:
        saved = json.loads((Path(path) / SWEEP_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and "runs" in saved and "seeds" in saved


def _not_of_the_sweep(path: Path) -> list[str]:
    """What a sweep folder holds that no sweep put there (anything but sweep.json, the plot and run
    directories): --overwrite would delete it."""
    return sorted(p.name for p in path.iterdir()
                  if not (p.name in SWEEP_FILES and p.is_file())
                  and not (p.is_dir() and not p.is_symlink() and (rundir.is_run_dir(p) or not any(p.iterdir()))))


def _check_sweep_dir(sweep: Path, overwrite: bool) -> bool:
    """Refuse a sweep folder that may not be used (every check before anything is deleted); True when
    an old sweep there is to be replaced."""
    rundir.check_utf8(sweep, "run_dir")
    if sweep.exists() and not sweep.is_dir():
        raise UserError(f"run_dir {str(sweep)!r} is a file, not a folder; pass another run_dir=")
    if not sweep.is_dir() or not any(sweep.iterdir()):
        return False  # a new or empty folder
    if not is_sweep_dir(sweep):
        raise UserError(f"{str(sweep)!r} already exists and is not a sweep folder (no {SWEEP_FILE}; "
                        f"{'--overwrite replaces only sweep folders, ' if overwrite else ''}a folder of runs "
                        "such as runs/ is not one); nothing was deleted: pass another run_dir=")
    if not overwrite:
        raise UserError(f"sweep directory {str(sweep)!r} already exists; pass --overwrite or another run_dir=")
    if stray := _not_of_the_sweep(sweep):
        raise UserError(f"--overwrite would delete {', '.join(map(repr, stray[:3]))}{' ...' if len(stray) > 3 else ''}"
                        f" in the sweep folder {str(sweep)!r}, which no sweep wrote; nothing was deleted: move "
                        "it out first, or pass another run_dir=")
    for run in sweep.iterdir():
        if run.is_dir():
            rundir.check_free(run)  # a seed still training is named by its PID
    return True


def run_sweep(config_path: str, seeds: list[int] | None, overrides: list[str], *, overwrite: bool = False,
              backend: Backend = "auto", grid: list[tuple[str, list[str]]] | None = None,
              train_command: str = "howsure-train") -> list[dict]:
    """Train every seed (default: the config's) at every grid point; returns one entry per run, in
    order (grid point, then seed): its seed, grid overrides, run_dir, status ("finished",
    "interrupted", "stopped", "not started") and, for a run that ended, its summary. A sweep stopped
    by Ctrl-C returns with the runs not finished marked so; sweep.json records the same, and the
    commands it prints to go on start with `train_command`."""
    grid = grid or []
    if grid:  # TensorBoard's HParams table shows every swept key, also at its default value
        overrides = [*overrides, f"log.hparams=[{','.join(key for key, _ in grid)}]"]
    base = wiring.load(config_path, overrides)
    points = grid_points(grid)
    # every point's config is checked (keys, types, ranges) before anything is deleted or trained
    point_cfgs = [wiring.load(config_path, overrides + point) if point else base for point in points]
    seeds = [base.seed] if seeds is None else seeds
    from howsure import envs

    for point_cfg in [base, *point_cfgs]:  # a grid may vary env.id
        envs.register_third_party(point_cfg.env.register)
        envs.check_id(point_cfg.env.id)
    # a grid may vary distributed.actors: runs that spread over Ray actors go one after another
    hows = {resolve_backend(backend, c) for c in [base, *point_cfgs]}
    how = "serial" if "serial" in hows else "ray"
    sweep = sweep_dir_for(base)
    replace = _check_sweep_dir(sweep, overwrite)
    sweep_abs = Path(os.path.abspath(sweep))
    runs: list[tuple[dict, Path, str]] = []
    for point, point_cfg in zip(points, point_cfgs):
        for seed in seeds:
            run_dir = sweep_abs / run_name(point, seed)
            cfg = dataclasses.replace(
                point_cfg, seed=seed, run_dir=str(run_dir),
                log=dataclasses.replace(point_cfg.log, quiet=point_cfg.log.quiet or how == "ray"),
                # one thread per run: parallel runs each get a core, not all cores
                torch_threads=1 if how == "ray" and point_cfg.torch_threads == 0 else point_cfg.torch_threads)
            runs.append(({"seed": seed, **({"overrides": point} if grid else {})}, run_dir, config.to_yaml(cfg)))
    started_ray = False
    if how == "ray":
        from howsure.distributed import connect

        try:
            started_ray = connect(os.environ.get("RAY_ADDRESS", ""))  # an unreachable head is refused here
        except KeyboardInterrupt:
            print("\ninterrupted while Ray was starting: no run started and nothing was changed")
            return [{**key, "run_dir": str(d), "status": "not started"} for key, d, _ in runs]
    try:
        if replace:
            shutil.rmtree(sweep)  # every check has passed
        sweep.mkdir(parents=True, exist_ok=True)
        what = f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"
        if grid:
            what = f"{len(points)} grid points x {what}"
        record = {"config": str(config_path), "overrides": overrides, "seeds": seeds,
                  "grid": {k: v for k, v in grid}, "backend": how}
        t0 = time.perf_counter()
        results: dict[str, dict] = {}  # run folder's name -> the summary its run returned
        entries = lambda: [_outcome(key, d, results.get(d.name)) for key, d, _ in runs]  # noqa: E731
        # written first, so the folder is known as a sweep's (and --overwrite may replace it) from the start
        rundir.write_text_atomic(sweep / SWEEP_FILE, json.dumps(
            {**record, "status": "running", "runs": entries()}, indent=2))
        print(f"sweep of {what} into {sweep}, {'in parallel as Ray tasks' if how == 'ray' else 'one after another'}")
        status = "failed"
        try:
            if how == "ray":
                interrupted = _run_ray(runs, results)
            else:
                interrupted = _run_serial(runs, results)
            status = "interrupted" if interrupted else "done"
        finally:  # an error in a run too leaves sweep.json saying which runs finished
            out = entries()
            if status == "done" and any(e["status"] != "finished" for e in out):
                status = "interrupted"  # a run stopped by a signal of its own (SIGTERM)
            wall = time.perf_counter() - t0
            rundir.write_text_atomic(sweep / SWEEP_FILE, json.dumps(
                {**record, "status": status, "wall_seconds": round(wall, 1), "runs": out}, indent=2))
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    if status == "done":
        print(f"\nsweep done in {wall:.0f} s: {sweep / SWEEP_FILE}")
        print(f"  plot: python -m howsure.plot {sweep}")
    else:
        _report_interrupted(out, config_path, overrides, sweep, wall, train_command)
    return out


def _outcome(key: dict, run_dir: Path, summary: dict | None) -> dict:
    """One run's entry in sweep.json: its summary where it returned one (or wrote summary.json before
    the sweep stopped), else what its folder shows: a checkpoint to resume, or none."""
    if summary is None:
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
        except (OSError, ValueError):
            summary = None
    if summary is not None:
        status = "interrupted" if summary.get("interrupted") else "finished"
        return {**key, **summary, "run_dir": str(run_dir), "status": status}
    if (run_dir / "checkpoints" / "latest.pt").is_file():
        status = "interrupted"  # stopped at once: its last periodic checkpoint resumes it
    elif run_dir.is_dir() and rundir.entries(run_dir):
        status = "stopped"  # started, but no checkpoint: it starts again
    else:
        status = "not started"
    return {**key, "run_dir": str(run_dir), "status": status}


def _name(entry: dict) -> str:
    return " ".join(entry.get("overrides", []) + [f"seed {entry['seed']}"])


def _report_interrupted(out: list[dict], config_path: str, overrides: list[str], sweep: Path, wall: float,
                        train_command: str) -> None:
    done = sum(e["status"] == "finished" for e in out)
    print(f"\nsweep interrupted after {wall:.0f} s: {done} of {len(out)} runs finished; "
          f"{sweep / SWEEP_FILE} records each run's state")
    # the sweep's own overrides, without the two each run sets itself
    kept = [o for o in overrides if o.split("=", 1)[0].strip() not in ("seed", "run_dir")]
    for e in out:
        if e["status"] == "finished":
            continue
        if e["status"] == "interrupted":
            at = f" at step {e['step']:,}" if "step" in e else ""
            print(f"  {_name(e)}: interrupted{at}, checkpoint saved; continue it with:\n"
                  f"    {train_command} --resume {shlex.quote(e['run_dir'])}")
            continue
        why = "not started" if e["status"] == "not started" else "stopped before its first checkpoint"
        argv = ["--config", str(config_path), *kept, *e.get("overrides", []), f"seed={e['seed']}",
                f"run_dir={e['run_dir']}"] + (["--overwrite"] if e["status"] == "stopped" else [])
        print(f"  {_name(e)}: {why}; train it with:\n    {train_command} {shlex.join(argv)}")


def _fmt(summary: dict) -> str:
    ev = summary.get("best_eval_return")
    point = " ".join(summary.get("overrides", []))
    how = ", interrupted" if summary.get("interrupted") else ""
    return (f"{point + ' ' if point else ''}seed {summary['seed']}: {summary['step']:,} steps{how}, best eval "
            f"return {'-' if ev is None else f'{ev:.2f}'}  ({summary['run_dir']})")


class _SweepStop:
    """Ctrl-C / SIGTERM during a serial sweep stop the whole sweep. While a run's loop trains, its own
    StopFlag (howsure/training.py) takes the signal: the run stops at the next step and checkpoints,
    and the sweep starts no further run. Before the loop takes over (the run's envs and agent being
    built) the run is abandoned at once (KeyboardInterrupt), as a single run would be; between runs
    the flag alone is set."""

    def __init__(self):
        self.raised = False
        self.in_run = False
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True
        if self.in_run:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _run_serial(runs: list[tuple[dict, Path, str]], results: dict[str, dict]) -> bool:
    """The runs one after another in this process; True when a signal stopped the sweep."""
    with _SweepStop() as stop:
        for key, run_dir, cfg_yaml in runs:
            if stop.raised:
                break
            stop.in_run = True
            try:
                summary = _train_one(cfg_yaml, str(run_dir))
            except KeyboardInterrupt:  # before the loop took over, or a second Ctrl-C: stopped at once
                stop.raised = True
                break
            finally:
                stop.in_run = False
            results[run_dir.name] = {**key, **summary}
            print(_fmt(results[run_dir.name]), flush=True)
            if summary.get("interrupted"):
                stop.raised = True
        return stop.raised


GRACE_SECONDS = 30  # how long Ctrl-C waits for Ray tasks to checkpoint and stop


def _run_ray(runs: list[tuple[dict, Path, str]], results: dict[str, dict]) -> bool:
    """The runs as Ray tasks, one CPU each; True when Ctrl-C stopped the sweep. Ctrl-C cancels the
    tasks gracefully: ray.cancel raises the SIGINT handler in a running task, so a run in its loop
    stops at the next step and checkpoints as under Ctrl-C; one still starting (or queued) ends
    without a checkpoint. A second Ctrl-C stops them at once."""
    import ray

    task = ray.remote(num_cpus=1, max_retries=0)(_train_one)
    pending = {task.remote(y, str(d)): (key, d) for key, d, y in runs}

    def collect(ref, interrupted: bool) -> None:
        key, d = pending.pop(ref)
        try:
            summary = ray.get(ref)
        except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError):
            return  # _outcome tells from its folder whether it has a checkpoint
        except ray.exceptions.RayTaskError as err:
            if interrupted:
                return
            raise UserError(f"{_name(key)} failed: {str(err).strip().splitlines()[-1][:200]}") from None
        results[d.name] = {**key, **summary}
        print(_fmt(results[d.name]), flush=True)

    # Ctrl-C (or SIGTERM) raises here even where SIGINT came ignored (a job started in the background)
    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            while pending:
                # a timeout hands control back to Python twice a second, so a Ctrl-C that arrives
                # while ray.wait blocks in C++ is raised here and not only when a run ends
                for ref in ray.wait(list(pending), num_returns=1, timeout=0.5)[0]:
                    collect(ref, False)
            return False
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the runs; each one training saves a checkpoint first (Ctrl-C "
                  "again stops them at once, without one)", flush=True)
            for ref in pending:
                ray.cancel(ref)
            # a cancelled task does not always get its KeyboardInterrupt (seen on a loaded machine):
            # after GRACE_SECONDS the runs still going are stopped at once, and reported without a checkpoint
            deadline = time.monotonic() + GRACE_SECONDS
            try:
                while pending:
                    for ref in ray.wait(list(pending), num_returns=1, timeout=0.5)[0]:
                        collect(ref, True)
                    if pending and time.monotonic() > deadline:
                        print(f"runs still going after {GRACE_SECONDS} s: stopping them at once", flush=True)
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                for ref in pending:
                    ray.cancel(ref, force=True)
            return True
    except UserError:
        for ref in pending:  # a failed run stops the sweep: the others stop too
            ray.cancel(ref, force=True)
        raise
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
