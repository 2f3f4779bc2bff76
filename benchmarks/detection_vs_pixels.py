"""Issue 6, acceptance 3: DQN on Pong seeing objects (the detection encoder) vs seeing pixels (the
Nature CNN), the same DQN settings (configs/dqn_pong_detection.yaml, except the replay ratio: see
AGENTS) and the same number of agent steps; reports the steps each needed to reach an evaluated
mean return of 0 and of +15, and plots the learning curves.

300,000 steps take about 60-80 minutes of one core for the pixel agent and 100-130 for the object
agent, whose 2 updates per step cost more than the pixel agent's one per 4 (not run in CI):

    nice -n 10 python benchmarks/detection_vs_pixels.py --steps 300000 \
        --json benchmarks/results/detection_vs_pixels.json --png benchmarks/results/detection_vs_pixels.png

Runs the agents one after the other. `--agents NAME` in separate processes with `--threads 1` runs
them side by side, and then `--report-only` reads all the runs. The run directories are kept: a
stopped run continues (train.py --resume), and a finished run shorter than --steps is continued to
--steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from howsure import machine  # noqa: E402
from howsure.errors import UserError, cli_main  # noqa: E402

# objects: the preset as it is (detected once per screen in the env, float rows in uniform replay,
# 2 updates per agent step: an update never runs the detector, so it costs ~3 ms).
# pixels: the Nature CNN on the 84x84 stacks, in the frame-deduplicating replay (same sampling, n-step
# and priorities as uniform, 7 KB per transition instead of 56 KB) with the bf16 encoder switch (a
# speed switch: about 1.5x faster updates, same algorithm), and the Nature ratio of one update per 4
# steps: its update costs 20-25 ms, so one per step would fit only ~1/3 of the steps in the hour.
# objects_every4: the object agent at the pixel agent's ratio, so the encoder is the only difference.
# EVERY4 pins all three keys: the preset's 2 updates per step and target every 2,000 updates must
# not leak into the 1-per-4 agents (the target stays every 4,000 agent steps, as in dqn_pong_fast).
EVERY4 = ["agent.train_every_steps=4", "agent.updates_per_train=1", "agent.target_update_every_updates=1000"]
AGENTS = {"objects": ["encoder.name=detection"],
          "pixels": ["encoder.name=nature_cnn", "env.detector=null", "replay.kind=atari", "agent.bf16_autocast=true",
                     *EVERY4],
          "objects_every4": ["encoder.name=detection", *EVERY4]}
TARGETS = (0.0, 15.0)  # returns whose first crossing is timed
EARLY = (-18.0, -15.0)  # the first steps off the -21 floor, where an agent that is far from 0 still shows its pace


def steps_to(curve: list[tuple[int, float]], target: float) -> int | None:
    """First evaluation step whose mean return reaches target; None if none did."""
    return next((s for s, v in curve if v >= target), None)


def run(name: str, args) -> dict:
    run_dir = Path(args.runs) / name
    overrides = [f"total_steps={args.steps}", f"seed={args.seed}", f"eval.every_steps={args.eval_every}",
                 f"eval.episodes={args.eval_episodes}", f"eval.num_envs={args.eval_episodes}",
                 f"torch_threads={args.threads}", "log.quiet=true", *AGENTS[name], *args.set]
    from howsure import config, wiring  # torch-free; the logger (torch) is imported after training

    saved = run_dir / "config.yaml"
    if saved.is_file():  # a run of another seed in the same --runs would be continued and reported as this one
        seed = wiring.from_dict(config.read_yaml(saved), saved=True).seed
        if seed != args.seed:
            raise UserError(f"{run_dir} is a run of seed {seed}, not --seed {args.seed}: "
                            f"give each seed its own --runs directory")
    summary_file = run_dir / "summary.json"  # written when a run ends (finished or stopped)
    steps_done = json.loads(summary_file.read_text())["step"] if summary_file.is_file() else 0
    finished = (run_dir / "checkpoints" / "final.pt").is_file() and steps_done >= args.steps
    if not finished and not args.report_only:  # a shorter finished run is continued to --steps
        if (run_dir / "checkpoints" / "latest.pt").is_file():
            cmd = [sys.executable, str(ROOT / "train.py"), "--resume", str(run_dir), f"total_steps={args.steps}"]
        else:
            cmd = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / args.config),
                   f"run_dir={run_dir}", "--overwrite", *overrides]
        print(" ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
    from howsure.logger import read_scalars

    if not saved.is_file():  # only --report-only gets here without a run
        raise UserError(f"no run at {run_dir}: drop --report-only to train it, "
                        "or point --runs at the run directories")
    scalars = read_scalars(run_dir)
    curve = [(int(s), float(v)) for s, v in scalars.get("eval/episodic_return", [])]
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    train = [(int(s), float(v)) for s, v in scalars.get("charts/episodic_return", [])]
    agent = wiring.from_dict(config.read_yaml(saved), saved=True).agent  # as the run was made (the run may be new)
    return {"eval_curve": curve, "training_returns": train, "steps_run": summary.get("step"),
            "wall_seconds": summary.get("wall_seconds"),
            "updates_per_step": agent.updates_per_train / agent.train_every_steps,
            **{f"steps_to_{int(t)}": steps_to(curve, t) for t in (*EARLY, *TARGETS)}}


def plot(results: dict, path: str) -> None:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, r) in enumerate(results.items()):
        colour, name = f"C{i}", f"{name} ({r['updates_per_step']:g} updates/step)"
        if r["eval_curve"]:
            s, v = zip(*r["eval_curve"])
            ax.plot(s, v, marker="o", color=colour, label=f"{name}: evaluations")
        if len(r.get("training_returns", [])) >= 20:
            s, v = map(np.asarray, zip(*r["training_returns"]))
            smooth = np.convolve(v, np.ones(20) / 20, mode="valid")
            ax.plot(s[19:], smooth, color=colour, lw=1, ls="--", alpha=0.7,
                    label=f"{name}: training episodes (mean of 20)")
    for t in TARGETS:
        ax.axhline(t, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("agent steps")
    ax.set_ylabel("mean return (game score)")
    ax.set_title("DQN on Pong: objects (detection encoder) vs pixels (Nature CNN)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


@cli_main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300_000, help="agent steps per agent")
    p.add_argument("--config", default="configs/dqn_pong_detection.yaml")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=25_000, help="agent steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", default="runs/detection_vs_pixels", help="run directories (kept for --resume)")
    p.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    p.add_argument("--set", nargs="*", default=[], metavar="key=value", help="extra overrides for both agents")
    p.add_argument("--report-only", action="store_true",
                   help="read the runs as they are (a run still going, or stopped early) without training")
    p.add_argument("--json")
    p.add_argument("--png")
    args = p.parse_args(argv)
    started = machine.describe()
    results = {name: run(name, args) for name in args.agents}
    text = json.dumps({"steps": args.steps, "seed": args.seed, **results, "machine": machine.ended(started)},
                      indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    if args.png:
        plot(results, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
