"""bsuite memory_len (Osband et al. 2019, arXiv:1908.03568): DRQN (dqn + LSTM encoder) against
the same agent with a feed-forward MLP, over memory lengths.

    python benchmarks/memory.py [--lengths 1 3 5 ...] [--episodes 1000] [--agents lstm mlp]

Each (agent, length) trains for --episodes episodes of bsuite's MemoryChain (one context bit,
reward +1/-1 at the last of length + 1 steps), then plays 100 greedy evaluation episodes.
Scoring follows bsuite's memory_len analysis: a length is solved when the regret ratio over all
training episodes, (episodes - correct) / 0.5 / episodes, is below 0.75 (a correct rate above
0.625); the score is the fraction of the lengths run that are solved. The default lengths are
bsuite's 23 (1-100); bsuite trains 10,000 episodes per length, this --episodes (fewer is harder:
the early, still-guessing episodes weigh more), so the score is "bsuite-style", not bsuite's.
Anchor (bsuite paper): LSTM actor-critic ~0.65, DQN ~0.04.
Writes benchmarks/results/memory_len.json and memory_len.png (--out renames); prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

from benchmarks.report import non_negative_int, positive_int  # noqa: E402
from howsure import machine, wiring  # noqa: E402
from howsure.errors import cli_main  # noqa: E402

PRESET = ROOT / "configs" / "drqn_memory_len.yaml"
RESULTS = ROOT / "benchmarks" / "results"
LEARNING_THRESH = 0.75  # bsuite.experiments.memory_len.analysis
FEED_FORWARD = ["encoder.name=mlp", "encoder.mlp.hidden_sizes=[64,64]", "replay.kind=uniform",
                "agent.batch_size=64"]


def bsuite_id(length: int) -> tuple[str, dict]:
    """bsuite's own id where the sweep has this length, else setting 0 with the length overridden."""
    from bsuite.experiments.memory_len import sweep

    lengths = [s["memory_length"] for s in sweep.SETTINGS]
    if length in lengths:
        return f"bsuite/memory_len/{lengths.index(length)}", {}
    return "bsuite/memory_len/0", {"memory_length": length}


def run(agent: str, length: int, episodes: int, seed: int, episodes_per_update: int = 1,
        epsilon_decay_fraction: float = 0.3, extra: tuple[str, ...] = ()) -> dict:
    from howsure import training as train
    from howsure.logger import read_scalars

    env_id, kwargs = bsuite_id(length)
    ep_steps = length + 1
    total = episodes * ep_steps
    overrides = [f"seed={seed}", f"env.id={env_id}", f"total_steps={total}", "log.quiet=true",
                 "torch_threads=1", "checkpoint_replay=false", f"eval.every_steps={total}",
                 f"log.every_steps={total}",
                 f"agent.train_every_steps={episodes_per_update * ep_steps}",
                 f"agent.learning_starts_steps={50 * ep_steps}",
                 f"agent.epsilon_decay_steps={int(epsilon_decay_fraction * total)}",
                 f"replay.sequence.length_steps={ep_steps}", f"replay.sequence.stride_steps={ep_steps}",
                 f"replay.capacity_steps={max(50_000, 200 * ep_steps)}"]
    overrides += [f"env.kwargs.{k}={v}" for k, v in kwargs.items()]
    if agent == "mlp":
        overrides += FEED_FORWARD
    overrides += list(extra)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = wiring.load(PRESET, overrides + [f"run_dir={tmp}"])
        t0 = time.perf_counter()
        summary = train.train(cfg, Path(tmp))
        wall = time.perf_counter() - t0
        scalars = read_scalars(tmp)
    returns = np.array([v for _, v in scalars.get("charts/episodic_return", [])])
    correct = int((returns > 0).sum())
    regret_ratio = (len(returns) - correct) / 0.5 / max(len(returns), 1)
    eval_return = float(scalars["eval/episodic_return"][-1][1])
    return {"agent": agent, "memory_length": length, "env_id": env_id, "env_kwargs": kwargs,
            "episodes": int(len(returns)), "train_correct_rate": correct / max(len(returns), 1),
            "regret_ratio": regret_ratio, "solved": bool(regret_ratio < LEARNING_THRESH),
            "eval_return": eval_return, "eval_correct_rate": (eval_return + 1) / 2,
            "steps": summary["step"], "wall_seconds": round(wall, 1),
            "episodes_per_update": episodes_per_update, "epsilon_decay_fraction": epsilon_decay_fraction,
            "overrides": list(extra)}


def summarize(runs: list[dict]) -> dict:
    out = {}
    for agent in sorted({r["agent"] for r in runs}):
        rs = sorted((r for r in runs if r["agent"] == agent), key=lambda r: r["memory_length"])
        solved = [r["memory_length"] for r in rs if r["solved"]]
        out[agent] = {"lengths": [r["memory_length"] for r in rs], "solved_lengths": solved,
                      "longest_solved": max(solved) if solved else None,
                      "score": len(solved) / len(rs)}
    return out


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for agent, label in (("lstm", "DRQN (LSTM encoder)"), ("mlp", "DQN (feed-forward MLP)")):
        rs = sorted((r for r in runs if r["agent"] == agent), key=lambda r: r["memory_length"])
        if rs:
            ax.plot([r["memory_length"] for r in rs], [r["eval_return"] for r in rs], "o-",
                    label=f"{label}: greedy eval")
            ax.plot([r["memory_length"] for r in rs], [2 * r["train_correct_rate"] - 1 for r in rs], "x--",
                    alpha=0.6, label=f"{label}: training mean")
    ax.axhline(2 * 0.625 - 1, color="grey", lw=0.8, ls=":", label="bsuite threshold (training mean)")
    ax.set_xscale("log")
    ax.set_xlabel("memory length (steps)")
    ax.set_ylabel("mean return (+1 correct, -1 wrong)")
    ax.set_title("bsuite memory_len")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


@cli_main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=positive_int, nargs="+", default=None,
                   help="memory lengths (default: bsuite's sweep, 23 lengths from 1 to 100)")
    p.add_argument("--episodes", type=positive_int, default=1000, help="training episodes per length")
    p.add_argument("--agents", nargs="+", default=["lstm", "mlp"], choices=["lstm", "mlp"])
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--episodes-per-update", type=positive_int, default=1, help="new episodes per gradient update")
    p.add_argument("--epsilon-decay-fraction", type=float, default=0.3,
                   help="epsilon anneals over this fraction of the training steps")
    p.add_argument("--fresh", action="store_true", help="drop earlier results instead of merging")
    p.add_argument("--out", default="memory_len", help="results name: benchmarks/results/<out>.json and .png")
    p.add_argument("overrides", nargs="*", help="extra key=value config overrides for every run")
    args = p.parse_args()
    if args.lengths is None:
        from bsuite.experiments.memory_len import sweep

        args.lengths = [s["memory_length"] for s in sweep.SETTINGS]
    out_json = RESULTS / f"{args.out}.json"
    runs = [] if args.fresh or not out_json.is_file() else json.loads(out_json.read_text())["runs"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for agent in args.agents:
        for length in args.lengths:
            started = machine.describe()
            r = run(agent, length, args.episodes, args.seed, args.episodes_per_update,
                    args.epsilon_decay_fraction, tuple(args.overrides))
            r = {**r, "machine": machine.ended(started)}
            runs = [o for o in runs if (o["agent"], o["memory_length"]) != (agent, length)] + [r]
            out_json.write_text(json.dumps({"summary": summarize(runs), "runs": runs}, indent=1))
            print(json.dumps(r), file=sys.stderr, flush=True)
    plot(runs, RESULTS / f"{args.out}.png")
    print(json.dumps({"summary": summarize(runs), "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
