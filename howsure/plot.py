"""Multi-seed learning curves: python -m howsure.plot SWEEP_DIR [--label NAME=DIR ...] [--tag TAG ...]

Reads the TensorBoard event files of every run under each sweep folder (howsure.logger.read_scalars),
puts each run's curve on a common step grid, and draws the interquartile mean (IQM) across
runs with a 95% percentile-bootstrap confidence band, the method of rliable (Agarwal et al.
2021, arXiv:2108.13264).

Runs become curves by what they ran: the runs of one sweep folder are grouped by env, agent and
the rest of their config.yaml minus the seed (and minus settings that do not change what is
learned: run length, wall-clock cap, evaluation, logging, checkpointing, device and speed switches;
see NOT_GROUPED), one curve per group, named by the settings that differ. A curve is cut to the
steps all its runs cover, with a warning naming the run that ends first. A run's wandb/ folder
(--track) is never searched for runs. Runs of different envs go to separate rows of panels and are
never averaged together (--pool, which averages every run of a folder into one curve, refuses a
folder of several envs). Several sweeps share one figure with --label NAME=DIR (repeatable; a positional SWEEP_DIR is
labelled by its folder name when more than one sweep is plotted). A curve of fewer than 3 points
is drawn as markers with error bars. The `rliable` package itself is not used: its import fails with
pandas 3 (its dependency `arch` calls pandas' removed deprecate_kwarg signature), so the IQM
(25% cut at each end, as rliable's scipy.stats.trim_mean call) and the bootstrap over runs
are computed here with numpy alone. Writes the PNG and a JSON of the plotted numbers beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from howsure.errors import UserError, cli_main
from howsure.logger import read_scalars

DEFAULT_TAGS = ("eval/episodic_return", "charts/episodic_return")
# config.yaml keys left out when grouping runs into curves (one ending in "." or "_" is a prefix): what
# does not change what a run learns, so that runs of one sweep stay one curve when one of them is
# resumed with more total_steps, a longer time limit, or is evaluated or logged differently:
#   seed                      the runs of a curve differ in it
#   total_steps, time_limit_minutes, eval.stop_return
#                             run length: no schedule depends on them (epsilon and lr decay count agent
#                             steps), and the curves are cut to the steps all runs cover; except that
#                             agent.lr_decay_steps=time_limit anneals PQN's rate over time_limit_minutes,
#                             so then it is grouped (read_run)
#   eval.* (but eval.epsilon) how often, how many episodes, on how many envs and with what video the
#                             greedy policy is measured; eval.epsilon stays grouped: it changes what
#                             eval/episodic_return measures (0.05, Nature DQN's Atari protocol, scores below greedy)
#   log.*, run_dir, checkpoint_*  what is written where
#   device, torch_threads, flush_denormal, reuse_freed_memory, env.env_workers, env.env_threads,
#   agent.compile_optimizer, agent.channels_last
#                             speed switches computing the same steps (the same arithmetic up to float
#                             rounding, in other threads, processes or memory layouts)
#   distributed.address, distributed.cpus_per_actor, distributed.max_actor_restarts
#                             where and on how many CPUs Ray runs the same actors
# Grouped speed switches, as they do change learning: learner_thread (the acting policy may be one
# update stale), agent.bf16_autocast (the update in bfloat16), distributed.actors, chunk_steps and
# weights_every_updates (how stale the actors' weights are).
NOT_GROUPED = ("seed", "total_steps", "time_limit_minutes", "eval.", "log.", "run_dir", "checkpoint_",
               "device", "torch_threads", "flush_denormal", "reuse_freed_memory", "env.env_workers",
               "env.env_threads", "agent.compile_optimizer", "agent.channels_last", "distributed.address",
               "distributed.cpus_per_actor", "distributed.max_actor_restarts")
GROUPED_EVAL = ("eval.epsilon",)  # under eval. but grouped: what the eval curve measures
SPARSE_POINTS = 3  # curves with fewer points are drawn as markers: a line of one point is invisible
NAME_CHARS = 80  # longest curve name in a legend


def is_event_file(name: str) -> bool:
    return name.startswith("events.out.tfevents")


def find_runs(root: str | Path) -> list[Path]:
    """Every folder under root (root included) holding TensorBoard event files, sorted. A run's
    wandb/ folder (train.py --track) is not searched: wandb may keep links to the run's event files
    there, which are not runs of their own. Symlinked folders are not entered."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{str(root)!r} is not a directory; pass a sweep folder (runs/sweeps/...)")
    from howsure.tracking import ID_FILE

    runs = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        is_run = any(is_event_file(f) for f in files)
        if is_run:
            runs.append(here)
        if is_run or "config.yaml" in files:
            subfolders[:] = [d for d in subfolders if d != "wandb"]
        subfolders[:] = [d for d in subfolders if not (d == "wandb" and (here / d / ID_FILE).is_file())]
    runs = sorted(runs)
    if not runs:
        raise UserError(f"no TensorBoard event files under {str(root)!r}; train into it first")
    return runs


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (rliable's aggregate). As in
    scipy.stats.trim_mean(values, 0.25), int(0.25 * n) values are cut at each end."""
    values = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = values.shape[axis]
    cut = int(0.25 * n)
    return np.take(values, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def bootstrap_ci(values: np.ndarray, reps: int = 2000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap of the IQM over runs. values: (runs, points) -> (low, high) per point."""
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    idx = rng.integers(0, n, size=(reps, n))  # resample whole runs, with replacement
    stats = iqm(values[idx], axis=1)  # (reps, points)
    tail = (1 - confidence) / 2 * 100
    return np.percentile(stats, tail, axis=0), np.percentile(stats, 100 - tail, axis=0)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` points (episodes); the first points average what exists."""
    if window <= 1 or len(values) == 0:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    i = np.arange(1, len(values) + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def on_grid(curves: list[tuple[np.ndarray, np.ndarray]], points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate each (steps, values) onto the steps all runs cover; returns (grid, runs x grid)."""
    start = max(s[0] for s, _ in curves)
    end = min(s[-1] for s, _ in curves)
    if end < start:
        raise UserError("the runs cover no common range of steps; plot runs of the same length")
    union = np.unique(np.concatenate([s for s, _ in curves]))
    grid = union[(union >= start) & (union <= end)]
    if len(grid) > points:
        grid = np.linspace(start, end, points)
    return grid, np.stack([np.interp(grid, s, v) for s, v in curves])


def aggregate(runs: list[Path], tag: str, smooth_window: int = 0, reps: int = 2000,
              seed: int = 0, scalars: dict[Path, dict] | None = None) -> dict | None:
    """IQM and bootstrap band of `tag` across runs; None when no run logged the tag. scalars: each
    run's read_scalars, where already read."""
    curves = []
    for run in runs:
        pts = (scalars[run] if scalars is not None and run in scalars else read_scalars(run)).get(tag)
        if not pts:
            continue
        steps = np.array([p[0] for p in pts], dtype=np.float64)
        vals = np.array([p[1] for p in pts], dtype=np.float64)
        order = np.argsort(steps, kind="stable")
        curves.append((steps[order], smooth(vals[order], smooth_window)))
    if not curves:
        return None
    grid, values = on_grid(curves)
    lo, hi = bootstrap_ci(values, reps=reps, seed=seed)
    return {"tag": tag, "runs": len(curves), "step": grid.tolist(), "iqm": iqm(values, axis=0).tolist(),
            "ci_low": lo.tolist(), "ci_high": hi.tolist(), "per_run": values.tolist()}


def event_file_damage(path: Path) -> int | None:
    """The byte at which a TensorBoard event file stops being whole records (a record header that
    fails its checksum, or a record running past the end of the file); None when it never does.
    Only the record headers are read, so this is quick even for a long run's file."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    size, pos = path.stat().st_size, 0
    with open(path, "rb") as fh:
        while pos < size:
            fh.seek(pos)
            head = fh.read(12)
            if len(head) < 12:
                return pos
            length, crc = struct.unpack("<QI", head)
            if masked_crc32c(head[:8]) != crc or pos + 12 + length + 4 > size:
                return pos
            pos += 12 + length + 4
    return None


def why_unreadable(run: Path) -> str:
    """Why a run folder's event files gave no scalars, for the warning that skips it."""
    for f in sorted(p for p in run.iterdir() if is_event_file(p.name)):
        try:
            at = event_file_damage(f)
        except OSError as err:
            return f"its event file {f.name!r} cannot be read ({err.strerror})"
        if at is not None:
            return f"its event file {f.name!r} is corrupt"
    return "it has logged no scalars yet"


def read_runs(run_dirs: list[str], skipped: list[str]) -> dict[Path, dict]:
    """Each run's scalars; a run whose event files give none (corrupt, or nothing logged yet) is
    left out with a one-line warning on stderr and its folder added to `skipped`."""
    read: dict[Path, dict] = {}
    for d in run_dirs:
        run = Path(d)
        data = read_scalars(run)
        if data:
            read[run] = data
            continue
        skipped.append(d)
        print(f"warning: skipped run {d!r}: {why_unreadable(run)}; the plot is of the other runs",
              file=sys.stderr)
    return read


def warn_cut(label: str, scalars: dict[Path, dict]) -> None:
    """One line on stderr when the runs of a curve are of different lengths (the last step any of
    their scalars reached): its curves are cut to the steps all its runs cover, so to the run that
    ends first, which the warning names."""
    ends = {run: max((pts[-1][0] for pts in data.values() if pts), default=0) for run, data in scalars.items()}
    if len(ends) < 2 or len(set(ends.values())) < 2:
        return
    short = min(ends, key=lambda run: (ends[run], str(run)))
    what = f"curve {label!r}" if label else "the curve"
    print(f"warning: {what} stops at step {ends[short]:,}, where run {str(short)!r} ends (the longest of its "
          f"{len(ends)} runs reaches {max(ends.values()):,}): curves are cut to the steps all their runs cover",
          file=sys.stderr)


def warn_missing_tags(asked: list[str], scalars: dict[Path, dict]) -> None:
    """One line on stderr for each --tag that no run logged (a misspelt one among several)."""
    from howsure.registry import suggest

    logged = sorted({tag for data in scalars.values() for tag in data})
    for tag in dict.fromkeys(asked):
        if tag not in logged:
            print(f"warning: --tag {tag!r} was logged by none of the runs{suggest(tag, logged)}; "
                  "it is left out of the plot", file=sys.stderr)


@dataclass(frozen=True)
class RunInfo:
    """A run folder and what it ran, from its config.yaml (None and () without one)."""

    path: Path
    env: str | None
    agent: str | None
    settings: tuple[tuple[str, str], ...]  # (dotted key, JSON value), sorted, NOT_GROUPED left out


def read_run(path: Path) -> RunInfo:
    from howsure.config import read_yaml
    from howsure.dashboards import flatten

    cfg_path = Path(path) / "config.yaml"
    if not cfg_path.is_file():
        return RunInfo(Path(path), None, None, ())
    flat = flatten(read_yaml(cfg_path))
    grouped = GROUPED_EVAL + (("time_limit_minutes",) if flat.get("agent.lr_decay_steps") == "time_limit" else ())
    settings = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in flat.items()
                            if k in grouped or not any(k == n or (n[-1] in "._" and k.startswith(n))
                                                       for n in NOT_GROUPED)))
    env, agent = flat.get("env.id"), flat.get("agent.name")
    return RunInfo(Path(path), None if env is None else str(env), None if agent is None else str(agent), settings)


def group_runs(runs: list[RunInfo]) -> list[list[RunInfo]]:
    """Runs with the same env, agent and settings, in order of their first run."""
    groups: dict[tuple, list[RunInfo]] = {}
    for run in runs:
        groups.setdefault((run.env, run.agent, run.settings), []).append(run)
    return list(groups.values())


def group_names(groups: list[list[RunInfo]]) -> list[str]:
    """Each group named by the settings whose values differ between the groups ('' for one group)."""
    if len(groups) < 2:
        return [""] * len(groups)
    tables = [dict(g[0].settings) for g in groups]
    known = [t for t in tables if t]  # runs without config.yaml are named as such, not compared
    keys = sorted({k for t in known for k in t})
    differ = [k for k in keys if len({t.get(k) for t in known}) > 1]
    names = []
    for t in tables:
        if not t:
            names.append("runs without config.yaml")
            continue
        name = ", ".join(f"{k}={t.get(k, '-')}" for k in differ).replace('"', "") or "runs with config.yaml"
        names.append(name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 3] + "...")
    return names


def parse_sweeps(positional: list[str], labelled: list[str]) -> list[tuple[str, Path]]:
    """[(label, folder)]: --label NAME=DIR items, and positional folders labelled by their name
    when several sweeps are plotted ('' for a lone one)."""
    sweeps: list[tuple[str, Path]] = []
    for item in labelled:
        label, sep, folder = item.partition("=")
        if not sep or not label.strip() or not folder:
            raise UserError(f"--label {item!r} is not NAME=DIR (for example --label double=runs/sweeps/ddqn)")
        sweeps.append((label.strip(), Path(folder)))
    several = len(positional) + len(labelled) > 1
    sweeps = [(Path(p).resolve().name if several else "", Path(p)) for p in positional] + sweeps
    if not sweeps:
        raise UserError("pass a sweep folder (SWEEP_DIR) or one or more --label NAME=DIR")
    labels = [label for label, _ in sweeps]
    if several and len(set(labels)) < len(labels):
        dup = next(label for label in labels if labels.count(label) > 1)
        raise UserError(f"two sweeps are labelled {dup!r}; give each its own --label NAME=DIR")
    return sweeps


def curves_of(sweeps: list[tuple[str, Path]], pool: bool = False) -> list[dict]:
    """One entry per curve: its label, env, agent and run folders. pool: one curve per sweep,
    refused when the sweep's runs are of different envs."""
    curves = []
    for label, root in sweeps:
        runs = [read_run(p) for p in find_runs(root)]
        if pool:
            envs = sorted({r.env for r in runs if r.env is not None})
            if len(envs) > 1:
                raise UserError(f"{str(root)!r} holds runs of {len(envs)} envs ({', '.join(envs)}); "
                                "--pool averages a folder into one curve, which needs one env: "
                                "drop --pool to get a curve per env and config")
            groups = [runs]
        else:
            groups = group_runs(runs)
        for group, name in zip(groups, [""] if pool else group_names(groups)):
            agents, envs = {r.agent for r in group}, {r.env for r in group if r.env is not None}
            curves.append({"label": ": ".join(p for p in (label, name) if p),
                           "env": envs.pop() if len(envs) == 1 else None,
                           "agent": agents.pop() if len(agents) == 1 else None,
                           "run_dirs": [str(r.path) for r in group]})
    return curves


def make_figure(results: list[dict], title: str):
    """Panels: a row per env, a column per tag; each curve in its own colour in every panel.
    Returns the matplotlib figure (draw() saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r.get("env") for r in results))
    tags = list(dict.fromkeys(r["tag"] for r in results))
    labels = list(dict.fromkeys(r.get("label", "") for r in results))
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    fig, axes = plt.subplots(len(envs), len(tags), figsize=(5.5 * len(tags), 4 * len(envs)), squeeze=False)
    for row, env in enumerate(envs):
        for col, tag in enumerate(tags):
            ax = axes[row][col]
            for r in results:
                if r.get("env") != env or r["tag"] != tag:
                    continue
                colour, name = colours[r.get("label", "")], r.get("label", "")
                x, mid = np.asarray(r["step"]), np.asarray(r["iqm"])
                lo, hi = np.asarray(r["ci_low"]), np.asarray(r["ci_high"])
                legend = f"{name + ': ' if name else ''}IQM of {r['runs']} runs"
                if len(x) < SPARSE_POINTS:
                    for run in r["per_run"]:
                        ax.plot(x, run, linestyle="none", marker=".", color=colour, alpha=0.3)
                    ax.errorbar(x, mid, yerr=[mid - lo, hi - mid], fmt="o", color=colour, capsize=4,
                                label=legend + ", 95% CI")
                else:
                    for run in r["per_run"]:
                        ax.plot(x, run, color=colour, alpha=0.2, linewidth=0.8)
                    ax.fill_between(x, lo, hi, color=colour, alpha=0.25)
                    ax.plot(x, mid, color=colour, linewidth=2, label=legend + ", 95% CI band")
            ax.set_xlabel("agent steps")
            ax.set_ylabel(tag)
            if len(envs) > 1 or env is not None:
                ax.set_title(env or "runs without config.yaml", fontsize=9)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def draw(results: list[dict], out: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig = make_figure(results, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def check_args(args: argparse.Namespace) -> None:
    """Flag values, refused before any event file is read."""
    if args.reps < 1:
        raise UserError(f"--reps must be a number of bootstrap resamples >= 1 (default 2000), got {args.reps}")
    if args.seed < 0:
        raise UserError(f"--seed must be an integer >= 0, got {args.seed}")
    if args.smooth < 0:
        raise UserError(f"--smooth must be 0 (no smoothing) or a number of points >= 1, got {args.smooth}")


def check_out(out: Path, given: bool) -> None:
    """The PNG (or other image) and the JSON beside it: files matplotlib can write, not a file of a
    run directory or an export folder, in a folder this user may create files in."""
    from matplotlib.backend_bases import FigureCanvasBase

    from howsure import rundir

    what = f"--out {str(out)!r}" if given else f"the plot's default path {str(out)!r}"
    if out.is_dir():
        raise UserError(f"{what} is a folder; name a file, e.g. {str(out / 'curves.png')!r}")
    formats = FigureCanvasBase.get_supported_filetypes()
    fmt = out.suffix.lower()[1:]
    if fmt not in formats:
        kind = f"a .{fmt} file" if fmt else "a file without a suffix"
        raise UserError(f"{what}: matplotlib cannot draw {kind}; name a .png file (or .svg, .pdf), "
                        f"e.g. {str(out.with_suffix('.png'))!r}")
    for path in (out, out.with_suffix(".json")):
        owned = rundir.owned_file(path)
        if owned is not None:
            which = (f"is {owned[0]}, which only howsure writes" if path == out else
                     f"would put its JSON at {str(path)!r}, {owned[0]} (only howsure writes there)")
            raise UserError(f"{what} {which}; name another file, e.g. {str(owned[1] / 'curves.png')!r}")
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"{what}: {str(parent)!r} is a file, not a folder")
    why = None if parent is None else rundir.cannot_create_in(parent)
    if why is not None:
        raise UserError(f"{what}: cannot create files in {str(parent)!r} ({why}); "
                        "pass --out with a path in a folder you may write to")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m howsure.plot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", nargs="*", help="a folder of runs (train.py --seeds writes one); several "
                   "are labelled by their folder names")
    p.add_argument("--label", action="append", default=[], metavar="NAME=DIR",
                   help="a sweep folder and the name its curves get in the legend (repeatable), e.g. "
                   "--label dqn=runs/sweeps/a --label boot=runs/sweeps/b")
    p.add_argument("--pool", action="store_true",
                   help="average every run of a folder into one curve whatever its config (refused for "
                   "runs of different envs); default: one curve per env, agent and config")
    p.add_argument("--tag", action="append", help=f"scalar tag to plot (repeatable); default {DEFAULT_TAGS}")
    p.add_argument("--out", help="PNG path (default SWEEP_DIR/curves.png, or curves.png in the folder that "
                   "holds all the sweeps); a .json of the numbers goes beside it")
    p.add_argument("--smooth", type=int, default=10,
                   help="trailing mean over this many points of every tag not under eval/ (charts/*, "
                   "losses/*, ...) before aggregating; eval/* is never smoothed; 0 or 1: no smoothing")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return p.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    sweeps = parse_sweeps(args.sweep_dir, args.label)
    if args.out:
        out = Path(args.out)
    elif len(sweeps) == 1:
        out = sweeps[0][1] / "curves.png"
    else:
        out = Path(os.path.commonpath([str(root.resolve()) for _, root in sweeps])) / "curves.png"
    curves = curves_of(sweeps, pool=args.pool)
    check_out(out, given=bool(args.out))
    tags = args.tag or list(DEFAULT_TAGS)
    skipped: list[str] = []
    results = []
    every: dict[Path, dict] = {}  # every run's scalars, for the --tag warning
    for curve in curves:
        scalars = read_runs(curve["run_dirs"], skipped)
        every.update(scalars)
        run_dirs = [d for d in curve["run_dirs"] if Path(d) in scalars]
        found = False
        for tag in tags:
            r = aggregate([Path(d) for d in run_dirs], tag,
                          0 if tag.startswith("eval/") else args.smooth, args.reps, args.seed, scalars)
            if r is not None:
                found = True
                results.append({**r, "label": curve["label"], "env": curve["env"], "agent": curve["agent"],
                                "run_dirs": run_dirs})
        if found:
            warn_cut(curve["label"], scalars)
    where = ", ".join(repr(str(root)) for _, root in sweeps)
    if not results:
        also = f" ({len(skipped)} runs skipped: see the warnings above)" if skipped else ""
        raise UserError(f"none of the runs under {where} logged {', '.join(tags)}{also}; pick one with --tag")
    if args.tag:
        warn_missing_tags(args.tag, every)
    if len(sweeps) == 1 and not sweeps[0][0]:
        title = f"{sweeps[0][1].name}: IQM over runs, 95% bootstrap CI"
    else:
        title = f"{' vs '.join(label for label, _ in sweeps)}: IQM over runs, 95% bootstrap CI"
    draw(results, out, title)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    for r in results:
        name = f"{r['label']} | " if r["label"] else ""
        print(f"{name}{r['tag']}: {r['runs']} runs, final IQM {r['iqm'][-1]:.2f} "
              f"[{r['ci_low'][-1]:.2f}, {r['ci_high'][-1]:.2f}] at step {r['step'][-1]:,.0f}")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
