"""Pong in an hour on this CPU: train configs/dqn_pong_hour.yaml under a hard wall-clock cap,
then score the agent as it was when training stopped on fresh episodes.

    python benchmarks/pong_hour.py --seed 0 --json benchmarks/results/pong_hour.json \
        --png benchmarks/results/pong_hour.png

1. Trains the preset (train.py, `time_limit_minutes`): training stops at --minutes of wall clock,
   evaluations included, or earlier when a periodic evaluation reaches the preset's stop_return.
2. Evaluates `checkpoints/final.pt` (the agent at the moment training stopped, not the best of
   the periodic evaluations) on --episodes fresh episodes whose seeds training never used.
3. Measures stable-baselines3's DQN (its Atari wrappers and Nature network) in steps per second
   on this machine, after training, so the peers' published step counts can be drawn as the
   wall clock they would need here.
4. Writes the JSON (returns, protocol, machine, load average at start and end) and a PNG of the
   evaluated return against wall-clock minutes.

Run it on an idle machine: the speed of everything else on the CPUs is part of the result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from howsure import checkpoint, machine, wiring  # noqa: E402
from howsure.errors import UserError, cli_main  # noqa: E402

PRESET = ROOT / "configs" / "dqn_pong_hour.yaml"
# Seeds of the final evaluation: far from every seed training uses (seed + step for training
# resets, seed + 1_000_003 + step for periodic evaluations, both below a few million).
EVAL_SEED_BASE = 900_000_000
# Agent steps the peers' published DQN curves need to reach +18 on Pong (NoFrameskip-v4,
# the Nature network): CleanRL's dqn_atari and stable-baselines3's DQN (RL Zoo) both cross +18
# between 2M and 3M steps.
PEER_STEPS = {"CleanRL / SB3 DQN, fastest published": 2_000_000, "CleanRL / SB3 DQN, slowest published": 3_000_000}


def train(run_dir: Path, seed: int, minutes: float, extra: list[str], resume: bool) -> None:
    cmd = ([sys.executable, str(ROOT / "train.py"), "--resume", str(run_dir)] if resume else
           [sys.executable, str(ROOT / "train.py"), "--config", str(PRESET), f"seed={seed}",
            f"run_dir={run_dir}"])
    cmd += [f"time_limit_minutes={minutes}", "log.quiet=true", *extra]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def final_evaluation(run_dir: Path, episodes: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.json"
        cmd = [sys.executable, str(ROOT / "evaluate.py"), str(run_dir / "checkpoints" / "final.pt"),
               "--episodes", str(episodes), "--seed", str(seed), "--json", str(out)]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def machine_label(result: dict) -> str:
    """'2 cores (AMD EPYC, family 26 model 2)', with the GPU where training ran on one."""
    m = result["machine"]
    cpu = m["cpu_model"] + (f", {m['cpu_family_model']}" if m.get("cpu_family_model") else "")
    label = f"{m['cores']} cores ({cpu})"
    if str(result.get("device", "cpu")).startswith("cuda") and m.get("gpu"):
        label += f" + {m['gpu']}"
    return label


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    curve = result["eval_curve"]
    ax.plot([c["wall_minutes"] for c in curve], [c["mean_return"] for c in curve], "o-",
            label=f"howsure {result['agent']} (periodic evaluations, {result['eval_episodes_periodic']} episodes)")
    spread = [[result["mean_return"] - min(result["returns"])], [max(result["returns"]) - result["mean_return"]]]
    ax.errorbar([result["train_wall_minutes"]], [result["mean_return"]], yerr=spread, fmt="s", color="black", capsize=4,
                label=f"final: {len(result['returns'])} fresh episodes (min-max)")
    # the peers' published step counts, drawn at SB3's speed here: Pong results only (main())
    peers = result.get("peer_steps_to_18") or {}
    sps = result.get("sb3_steps_per_second") if peers else None
    if sps:
        for (name, steps), style in zip(peers.items(), ("--", ":")):
            minutes = steps / sps / 60
            ax.axvline(minutes, color="gray", linestyle=style,
                       label=f"{name}: {steps / 1e6:.0f}M steps at SB3's {sps:.0f} steps/s here = {minutes / 60:.1f} h")
    if "Pong" in result["protocol"]["env_id"]:
        ax.axhline(18, color="green", linewidth=0.8)
    if sps:  # the peers' hours need a log scale past the hour
        ax.set_xscale("symlog", linthresh=60, linscale=2)
        ticks = [0, 15, 30, 45, 60, 120, 300, 600, 1200]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlim(0, 1300)
        ax.set_xlabel("wall-clock minutes of training (log scale past 60)")
    else:
        ax.set_xlim(0, max(c["wall_minutes"] for c in curve + [{"wall_minutes": result["train_wall_minutes"]}]) * 1.05)
        ax.set_xlabel("wall-clock minutes of training")
    ax.set_ylabel(f"evaluated return ({result['protocol']['env_id']})")
    if "Pong" in result["protocol"]["env_id"]:
        ax.set_ylim(-21.5, 21.5)
    ax.set_title(f"{result['protocol']['env_id']}, seed {result['seed']}: {result['mean_return']:+.1f} "
                 f"after {result['train_wall_minutes']:.0f} min on {machine_label(result)}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def write_pretrained(run_dir: Path, out_dir: Path, result: dict, json_path: Path) -> None:
    """The watch-only export of final.pt, with a README that states its score and origin."""
    from howsure import export

    export.export(run_dir / "checkpoints" / "final.pt", out_dir)
    game = result["protocol"]["env_id"]
    m = result["machine"]
    returns = ", ".join(f"{r:g}" for r in result["returns"])
    proto = result["protocol"]
    rows = [
        ("score", f"**{result['mean_return']:+.2f}** mean over {len(result['returns'])} fresh episodes "
                  f"(min {result['min_return']:g}, std {result['std_return']:.2f})"),
        ("returns", returns),
        ("protocol", f"sticky actions {proto['sticky_action_prob']}, up to {proto['noop_max']} no-op starts, "
                     f"frame skip {proto['frame_skip']}, epsilon {proto['epsilon']}, full game, raw score"),
        ("evaluation seeds", f"`evaluate.py --seed {result['eval_seed']} --episodes {len(result['returns'])}`"),
        ("training", f"{result['train_steps']:,} agent steps in {result['train_wall_minutes']:.1f} wall-clock minutes, "
                     f"seed {result['seed']}, preset `{result['preset']}` (the resolved config is `config.yaml` here)"),
        ("machine", f"{machine_label(result)}, torch {m['torch']} ({m['torch_cpu_capability']}), "
                    f"load average {m['load_start']} at the start"),
        ("date", result["date"]),
        ("produced by", f"`{result['command']}`"),
        ("full result", f"`{json_path}`"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    title = f"# {game}: `{result['agent']}` trained for {result['train_wall_minutes']:.0f} minutes"
    (out_dir / "README.md").write_text(f"""{title}

Watch it (a window, or MP4 files):

```bash
python evaluate.py {out_dir} --render --episodes 1
python evaluate.py {out_dir} --episodes 1 --video videos/
```

| | |
|---|---|
{table}

The folder holds the resolved config and the online network's weights (safetensors), no optimizer
and no replay: `python -m howsure.export RUN_DIR OUT_DIR` makes one from any run.
""")


@cli_main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock cap of training")
    p.add_argument("--episodes", type=int, default=30, help="fresh evaluation episodes at the end")
    p.add_argument("--runs", default="runs/pong_hour", help="folder for the run directory (one per seed)")
    p.add_argument("--json", default="benchmarks/results/pong_hour.json")
    p.add_argument("--png", default=None, help="curve plot (default: the JSON's name with .png)")
    p.add_argument("--sb3-steps", type=int, default=3_000, help="SB3 steps timed after its warm-up (0: skip)")
    p.add_argument("--report-only", action="store_true", help="skip training; evaluate and report an existing run")
    p.add_argument("--game", default=None, help="another ALE/ id for the same preset (e.g. ALE/Breakout-v5); "
                   "it trains the full --minutes")
    p.add_argument("--export", metavar="DIR", help="also write the watch-only export of final.pt there, with a README")
    p.add_argument("--replot", action="store_true", help="only redraw the PNG from an existing --json")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for training")
    args = p.parse_args()
    if args.replot:
        try:
            result = json.loads(Path(args.json).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"--replot: cannot read {args.json} ({err})") from None
        plot(result, Path(args.png) if args.png else Path(args.json).with_suffix(".png"))
        return 0
    if args.minutes <= 0 or args.episodes <= 0 or args.seed < 0 or args.sb3_steps < 0:
        raise UserError("--minutes and --episodes must be positive, --seed and --sb3-steps non-negative")
    run_dir = Path(args.runs) / f"seed{args.seed}"
    if args.game:  # the preset's stop_return is Pong's goal; other games train the full time
        args.overrides = [f"env.id={args.game}", "eval.stop_return=null", *args.overrides]
    info = machine.describe()
    if not args.report_only:
        done = (run_dir / "checkpoints" / "final.pt").is_file()
        if done:
            raise UserError(f"{run_dir} already holds a finished run; use --report-only or another --runs")
        train(run_dir, args.seed, args.minutes, args.overrides,
              resume=(run_dir / "checkpoints" / "latest.pt").is_file())
    if not (run_dir / "checkpoints" / "final.pt").is_file():
        raise UserError(f"{run_dir} has no finished run (checkpoints/final.pt); train it first")
    state = checkpoint.load(run_dir / "checkpoints" / "final.pt")
    cfg = wiring.from_yaml(state["config_yaml"])
    loop = state["loop"]
    evaluation = final_evaluation(run_dir, args.episodes, EVAL_SEED_BASE + 1000 * args.seed)
    load_end_train = machine.load_average()
    sb3 = None
    if args.sb3_steps:
        from throughput import sb3_sps

        sb3 = round(sb3_sps(args.sb3_steps), 1)
    result = {
        "preset": str(PRESET.relative_to(ROOT)), "agent": cfg.agent.name, "encoder": cfg.encoder.name,
        "device": cfg.device,
        "seed": cfg.seed, "mean_return": evaluation["mean_return"], "returns": evaluation["returns"],
        "std_return": evaluation["std_return"], "min_return": evaluation["min_return"],
        "train_wall_minutes": round(loop["wall_seconds"] / 60, 2), "train_steps": int(state["step"]),
        "time_limit_minutes": cfg.time_limit_minutes, "stopped_at_return_step": loop.get("stopped_at_return"),
        "eval_seed": EVAL_SEED_BASE + 1000 * args.seed,
        "protocol": {"env_id": cfg.env.id, "sticky_action_prob": cfg.env.sticky_action_prob,
                     "noop_max": cfg.env.noop_max, "frame_skip": cfg.env.frame_skip,
                     "epsilon": evaluation["epsilon"], "full_action_space": cfg.env.full_action_space,
                     "max_episode_frames": cfg.env.max_episode_frames, "score": "full game, raw",
                     "screen_size": cfg.env.screen_size, "backend": cfg.env.backend},
        "eval_episodes_periodic": cfg.eval.episodes,
        "eval_curve": [{"step": e[0], "mean_return": e[1], "wall_minutes": round(e[2] / 60, 2)}
                       for e in loop.get("evals", []) if len(e) >= 3],
        "sb3_steps_per_second": sb3,
        **({"peer_steps_to_18": PEER_STEPS} if "Pong" in cfg.env.id else {}),  # the peers' Pong curves
        "machine": {**info, "load_end_training": load_end_train, "load_end": machine.load_average()},
        "date": time.strftime("%Y-%m-%d"),
        "command": "python " + " ".join(sys.argv),
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    png = Path(args.png) if args.png else out.with_suffix(".png")
    plot(result, png)
    if args.export:
        write_pretrained(run_dir, Path(args.export), result, out)
    print(json.dumps({k: result[k] for k in ("seed", "mean_return", "train_wall_minutes", "train_steps",
                                             "sb3_steps_per_second")}))
    print(f"wrote {out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
