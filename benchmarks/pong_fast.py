"""Pong on 2 CPU cores within the hour: the report of a configs/dqn_pong_fast.yaml run.

Train (the exact command behind benchmarks/results/pong_fast_*; SIGTERM at 60 minutes checkpoints
and stops, eval.stop_return=18 stops earlier):

    timeout -s TERM 3600 python train.py --config configs/dqn_pong_fast.yaml run_dir=runs/pong_fast_s0

then report it: evaluate.py plays 10 fresh episodes with the best checkpoint (the one training's
own evaluation picked), the JSON gains `train_wall_minutes` and `train_steps`, and a PNG shows the
evaluated and training returns against agent steps and against wall-clock minutes:

    python benchmarks/pong_fast.py runs/pong_fast_s0 --out benchmarks/results/pong_fast
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from howsure import config, machine  # noqa: E402
from howsure.errors import UserError, cli_main  # noqa: E402
from howsure.logger import read_scalars  # noqa: E402


def plot(scalars: dict, out_png: Path, goal: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    evals = scalars.get("eval/episodic_return", [])
    train = scalars.get("charts/episodic_return", [])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, col, label in ((axes[0], 0, "agent steps"), (axes[1], 2, "wall-clock minutes")):
        scale = 1 / 60 if col == 2 else 1.0
        if train:
            x = np.array([t[col] for t in train]) * scale
            y = np.array([t[1] for t in train])
            k = min(10, len(y))
            ax.plot(x, y, color="0.8", lw=0.8, label="training episodes")
            ax.plot(x[k - 1:], np.convolve(y, np.ones(k) / k, mode="valid"), color="0.45", lw=1.2,
                    label=f"training, mean of {k}")
        if evals:
            ax.plot(np.array([t[col] for t in evals]) * scale, [t[1] for t in evals], "o-", color="C0",
                    label="evaluation, 10 episodes")
        ax.axhline(goal, color="C3", ls="--", lw=1, label=f"goal +{goal:g}")
        if col == 2:
            ax.axvline(60, color="0.3", ls=":", lw=1, label="60 minutes")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("return (Pong score difference)")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle("DQN (configs/dqn_pong_fast.yaml) on Pong, 2 CPU cores")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)


@cli_main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pong_fast",
                   help="prefix of the written files: PREFIX_eval.json, PREFIX_curve.png")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--goal", type=float, default=18.0)
    args = p.parse_args()
    for needed in ("summary.json", "config.yaml", "checkpoints/best.pt"):
        if not (args.run_dir / needed).is_file():
            raise UserError(f"{str(args.run_dir / needed)!r} not found: pass the run directory of a finished or "
                            "interrupted configs/dqn_pong_fast.yaml run with at least one evaluation")
    env_id = config.read_yaml(args.run_dir / "config.yaml").get("env", {}).get("id")
    if env_id != "ALE/Pong-v5":
        raise UserError(f"{str(args.run_dir)!r} is a run on {env_id!r}: pong_fast.py reports runs of "
                        "configs/dqn_pong_fast.yaml on ALE/Pong-v5")
    started = machine.describe()
    summary = json.loads((args.run_dir / "summary.json").read_text())
    eval_json = args.out.with_name(args.out.name + "_eval.json")
    checkpoint = args.run_dir / "checkpoints" / "best.pt"
    subprocess.run([sys.executable, str(ROOT / "evaluate.py"), str(checkpoint), "--episodes", str(args.episodes),
                    "--json", str(eval_json)], check=True, cwd=ROOT)
    result = json.loads(eval_json.read_text())
    scalars = read_scalars(args.run_dir, wall_time=True)  # (step, value, seconds since the first scalar)
    evals = scalars.get("eval/episodic_return", [])
    reached = next(((s, v, t) for s, v, t in evals if v >= args.goal), None)
    result.update({
        "checkpoint": "best.pt (the best of training's evaluations)",
        "train_wall_minutes": round(summary["wall_seconds"] / 60, 2),
        "train_steps": summary["step"],
        "training_evaluations": [[s, v, round(t / 60, 2)] for s, v, t in evals],  # step, mean return, minutes
        "goal": args.goal,
        "goal_reached_in_training_eval": None if reached is None else
        {"step": reached[0], "mean_return": reached[1], "wall_minutes": round(reached[2] / 60, 2)},
        "machine": machine.ended(started),  # of the evaluation; the training's load is in its run directory
    })
    eval_json.write_text(json.dumps(result, indent=2) + "\n")
    plot(scalars, args.out.with_name(args.out.name + "_curve.png"), args.goal)
    print(json.dumps({k: result[k] for k in ("mean_return", "train_wall_minutes", "train_steps",
                                             "goal_reached_in_training_eval")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
