"""Multi-seed learning curves: python -m howsure.plot SWEEP_DIR [--tag TAG ...] [--out PNG]

Reads the TensorBoard event files of every run under SWEEP_DIR (howsure.logger.read_scalars),
puts each run's curve on a common step grid, and draws the interquartile mean (IQM) across
runs with a 95% percentile-bootstrap confidence band, the method of rliable (Agarwal et al.
2021, arXiv:2108.13264). The `rliable` package itself is not used: its import fails with
pandas 3 (its dependency `arch` calls pandas' removed deprecate_kwarg signature), so the IQM
(25% cut at each end, as rliable's scipy.stats.trim_mean call) and the bootstrap over runs
are computed here with numpy alone. Writes the PNG and a JSON of the plotted numbers beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from howsure.errors import UserError, cli_main
from howsure.logger import read_scalars

DEFAULT_TAGS = ("eval/episodic_return", "charts/episodic_return")


def find_runs(root: str | Path) -> list[Path]:
    """Every folder under root (root included) holding TensorBoard event files, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{str(root)!r} is not a directory; pass a sweep folder (runs/sweeps/...)")
    runs = sorted({p.parent for p in root.rglob("events.out.tfevents*")})
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
              seed: int = 0) -> dict | None:
    """IQM and bootstrap band of `tag` across runs; None when no run logged the tag."""
    curves = []
    for run in runs:
        pts = read_scalars(run).get(tag)
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


def draw(results: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, r in zip(axes[0], results):
        x = np.asarray(r["step"])
        for run in r["per_run"]:
            ax.plot(x, run, color="tab:blue", alpha=0.2, linewidth=0.8)
        ax.fill_between(x, r["ci_low"], r["ci_high"], color="tab:blue", alpha=0.25, label="95% bootstrap CI")
        ax.plot(x, r["iqm"], color="tab:blue", linewidth=2, label=f"IQM of {r['runs']} runs")
        ax.set_xlabel("agent steps")
        ax.set_ylabel(r["tag"])
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m howsure.plot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", help="a folder of runs (train.py --seeds writes one)")
    p.add_argument("--tag", action="append", help=f"scalar tag to plot (repeatable); default {DEFAULT_TAGS}")
    p.add_argument("--out", help="PNG path (default SWEEP_DIR/curves.png); a .json of the numbers goes beside it")
    p.add_argument("--smooth", type=int, default=10,
                   help="trailing mean over this many points of charts/* tags before aggregating (eval/* is not smoothed)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return p.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = find_runs(args.sweep_dir)
    tags = args.tag or list(DEFAULT_TAGS)
    results = [r for tag in tags
               if (r := aggregate(runs, tag, 0 if tag.startswith("eval/") else args.smooth,
                                  args.reps, args.seed)) is not None]
    if not results:
        raise UserError(f"none of the runs under {args.sweep_dir!r} logged {', '.join(tags)}; pick one with --tag")
    out = Path(args.out) if args.out else Path(args.sweep_dir) / "curves.png"
    draw(results, out, f"{Path(args.sweep_dir).name}: IQM over runs, 95% bootstrap CI")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    for r in results:
        print(f"{r['tag']}: {r['runs']} runs, final IQM {r['iqm'][-1]:.2f} "
              f"[{r['ci_low'][-1]:.2f}, {r['ci_high'][-1]:.2f}] at step {r['step'][-1]:,.0f}")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
