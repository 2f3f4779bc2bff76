"""How much of howsure's lead on Pong is glibc's allocator: stable-baselines3's DQN (as
benchmarks/throughput.py runs it) with glibc's defaults and with the thresholds howsure's
reuse_freed_memory sets, given to its process as MALLOC_* environment variables, alternated.

howsure sets these itself (reuse_freed_memory=auto); a user of stable-baselines3 can set them the
same way. `speedup` is the median ratio within a round.

    python benchmarks/peer_allocator.py --steps 3000 --rounds 3 --json benchmarks/results/peer_allocator_zen3.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

from benchmarks.report import finish, positive_int  # noqa: E402
from howsure import machine  # noqa: E402
from howsure.errors import cli_main  # noqa: E402
from howsure.runtime import MMAP_THRESHOLD, TRIM_THRESHOLD  # noqa: E402

ENV = {"MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD), "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}


def sb3_sps(steps: int, allocator_env: bool) -> float:
    code = f"from benchmarks.throughput import sb3_sps; print(sb3_sps({steps}))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(ENV if allocator_env else {})}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@cli_main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=positive_int, default=3_000, help="timed agent steps after learning starts")
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    host = machine.describe()
    samples: dict[str, list[float]] = {"sb3_sps": [], "sb3_allocator_env_sps": []}
    for r in range(args.rounds):
        for key, tuned in (("sb3_sps", False), ("sb3_allocator_env_sps", True)):
            samples[key].append(round(sb3_sps(args.steps, tuned), 2))
            print(f"round {r + 1}: {key} {samples[key][-1]}", file=sys.stderr, flush=True)
    result = {"timed_steps": args.steps, "rounds": args.rounds, "allocator_env": ENV,
              **{k: statistics.median(v) for k, v in samples.items()},
              "speedup": round(statistics.median(t / d for d, t in zip(samples["sb3_sps"],
                                                                         samples["sb3_allocator_env_sps"])), 3),
              "samples": samples, "machine": host}
    finish(result, args.json)


if __name__ == "__main__":
    main()
