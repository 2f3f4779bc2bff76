"""Replay memory per transition at the Nature paper's 1,000,000 capacity, next to stable-baselines3.

  python benchmarks/replay_memory.py                  # 1,000,000 transitions (~7 GB RAM for a minute)
  python benchmarks/replay_memory.py --capacity 100000

For each variant (uncompressed, lz4-compressed) a fresh child process builds the Atari replay,
fills it completely with real ALE/Pong-v5 transitions (random play; --source-steps of them,
replayed in a cycle so that filling a million slots takes seconds, not minutes of emulation),
and reports: allocated bytes per transition (the buffer's own nbytes), resident memory (RSS)
gained per transition, and the CPU time of add() per agent step. The speed cost of compression is
measured apart, in one process, on two buffers of --speed-capacity transitions (already far
larger than the CPU caches) with sample(32) timed in alternating rounds, so that load from
other processes hits both variants alike; the figure is the median round's CPU time. The
stable-baselines3 figures are what its ReplayBuffer allocates for the same observation space
(computed at a small capacity and scaled: every array is linear in it), with and without
optimize_memory_usage. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

from benchmarks.report import positive_int  # noqa: E402
from howsure.errors import cli_main  # noqa: E402

OBS_SHAPE = (4, 84, 84)
N_ACTIONS = 6  # Pong's minimal action set


def allocated_bytes_per_transition(capacity: int = 1_000_000, prioritized: bool = False) -> float:
    """The uncompressed Atari replay's allocated bytes per transition (its pages stay untouched)."""
    from howsure.replay.atari import AtariReplay
    from howsure.replay.prioritized import PrioritySettings

    buffer = AtariReplay(capacity, OBS_SHAPE, np.uint8, 0.99, n_actions=N_ACTIONS,
                         priority=PrioritySettings() if prioritized else None)
    return buffer.nbytes / capacity


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def pong_source(steps: int, seed: int = 0) -> list[tuple]:
    """Real Pong transitions (one env, random actions), as add() rows."""
    from howsure import config, envs

    stepper = envs.VectorStepper(envs.make_vector_env(config.EnvConfig(id="ALE/Pong-v5"), 1))
    rng = np.random.default_rng(seed)
    obs = stepper.reset(seed=seed)
    rows = []
    for _ in range(steps):
        actions = rng.integers(0, N_ACTIONS, size=1)
        st = stepper.step(actions)
        rows.append((obs, actions, st.rewards, st.next_obs, st.terminated, st.dones))
        obs = st.obs
    stepper.close()
    return rows


def measure(capacity: int, compress: bool, source_steps: int) -> dict:
    """Runs in a child process: fill a fresh replay with Pong and measure it."""
    import torch
    from howsure.replay.atari import AtariReplay

    torch.set_num_threads(1)
    rows = pong_source(source_steps)
    before = rss_bytes()
    buffer = AtariReplay(capacity, OBS_SHAPE, np.uint8, 0.99, n_actions=N_ACTIONS, compress=compress)
    t0 = time.process_time()  # CPU time (incl. the kernel's first touch of pages), not wall-clock
    for i in range(capacity):
        buffer.add(*rows[i % len(rows)])
    add_s = time.process_time() - t0
    rss = rss_bytes() - before
    return {"allocated_bytes": buffer.nbytes, "rss_bytes": rss, "transitions": len(buffer),
            "add_cpu_us_per_step": round(add_s / capacity * 1e6, 2)}


def sampling_speed(capacity: int, source_steps: int, rounds: int = 15, per_round: int = 100) -> dict:
    """Median CPU microseconds per sample(32), uncompressed vs compressed, timed in alternation."""
    from howsure.replay.atari import AtariReplay

    rows = pong_source(source_steps, seed=1)
    buffers = {}
    for variant in ("uncompressed", "compressed"):
        buffers[variant] = AtariReplay(capacity, OBS_SHAPE, np.uint8, 0.99, n_actions=N_ACTIONS,
                                       compress=variant == "compressed")
        for i in range(capacity):
            buffers[variant].add(*rows[i % len(rows)])
    times: dict[str, list[float]] = {v: [] for v in buffers}
    for _ in range(rounds):
        for variant, buffer in buffers.items():
            t0 = time.process_time()  # CPU time: wall-clock swings with other load on the machine
            for _ in range(per_round):
                buffer.sample(32)
            times[variant].append((time.process_time() - t0) / per_round * 1e6)
    return {v: round(float(np.median(t)), 1) for v, t in times.items()}


def sb3_bytes_per_transition(optimize_memory_usage: bool, capacity: int = 10_000) -> dict:
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    buffer = ReplayBuffer(capacity, spaces.Box(0, 255, OBS_SHAPE, np.uint8), spaces.Discrete(N_ACTIONS),
                          device="cpu", optimize_memory_usage=optimize_memory_usage,
                          handle_timeout_termination=not optimize_memory_usage)
    arrays = [buffer.observations, buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts]
    if not optimize_memory_usage:
        arrays.append(buffer.next_observations)
    return {"allocated": sum(a.nbytes for a in arrays) / capacity,
            # SB3's own estimate (its start-up memory warning) leaves out the timeouts array
            "sb3_estimate": (sum(a.nbytes for a in arrays) - buffer.timeouts.nbytes) / capacity}


@cli_main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--capacity", type=positive_int, default=1_000_000, help="transitions")
    p.add_argument("--source-steps", type=positive_int, default=20_000, help="real Pong agent steps recorded")
    p.add_argument("--speed-capacity", type=positive_int, default=200_000, help="transitions, for the sampling timing")
    p.add_argument("--child", choices=["uncompressed", "compressed"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.capacity, args.child == "compressed", args.source_steps)))
        return
    from howsure import machine

    started = machine.describe()
    runs = {}
    for variant in ("uncompressed", "compressed"):
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--capacity", str(args.capacity),
                              "--source-steps", str(args.source_steps)], capture_output=True, text=True,
                             check=True)
        runs[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    cap = args.capacity
    speed = sampling_speed(args.speed_capacity, args.source_steps)
    sb3 = {"optimize_memory_usage": sb3_bytes_per_transition(True), "default": sb3_bytes_per_transition(False)}
    result = {
        "capacity": cap,
        "frames": f"{args.source_steps:,} real ALE/Pong-v5 transitions (random play), cycled to fill",
        "bytes_per_transition": {v: round(r["allocated_bytes"] / cap, 1) for v, r in runs.items()},
        "rss_bytes_per_transition": {v: round(r["rss_bytes"] / cap, 1) for v, r in runs.items()},
        "goal_bytes_per_transition": {"uncompressed": 7_200, "compressed": 2_500},
        "prioritized_extra_bytes_per_transition": round(
            allocated_bytes_per_transition(cap, True) - allocated_bytes_per_transition(cap), 1),
        "total_gib": {v: round(r["rss_bytes"] / 2**30, 2) for v, r in runs.items()},
        "sb3_bytes_per_transition": {k: round(v["allocated"], 1) for k, v in sb3.items()},
        "sb3_own_estimate_bytes_per_transition": {k: round(v["sb3_estimate"], 1) for k, v in sb3.items()},
        "sb3_total_gib": {k: round(v["allocated"] * cap / 2**30, 2) for k, v in sb3.items()},
        "add_cpu_us_per_step": {v: r["add_cpu_us_per_step"] for v, r in runs.items()},
        "sample32_cpu_us": speed,
        "sample32_capacity": args.speed_capacity,
        "compression_sample_slowdown": round(speed["compressed"] / speed["uncompressed"], 2),
        "transitions_sampleable": {v: r["transitions"] for v, r in runs.items()},
        "machine": machine.ended(started),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
