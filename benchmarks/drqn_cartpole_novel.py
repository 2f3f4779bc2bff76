"""DRQN vs a feed-forward DQN on CartPoleNoVel-v1 (CartPole without velocities), several seeds.

    python benchmarks/drqn_cartpole_novel.py [--seeds 0 1 2] [--encoders lstm mlp] [--steps 200000]

lstm: configs/drqn_cartpole_novel.yaml (dqn + LSTM encoder + sequence replay, stored state,
burn-in). mlp: the same agent settings with the MLP encoder on one observation and uniform
replay. Each run stops early once the evaluated mean (20 episodes, greedy) reaches 475. Results
merge into benchmarks/results/drqn_cartpole_novel.json (one entry per encoder and seed), so the
runs can be spread over several invocations; the JSON is printed at the end.
Goal (issue 5): lstm reaches 475 within 200,000 steps for 2 of 3 seeds; mlp stays far below.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

from benchmarks.report import non_negative_int, positive_int  # noqa: E402
from howsure import machine, wiring  # noqa: E402
from howsure.errors import cli_main  # noqa: E402

PRESET = ROOT / "configs" / "drqn_cartpole_novel.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "drqn_cartpole_novel.json"
FEED_FORWARD = ["encoder.name=mlp", "encoder.mlp.hidden_sizes=[64,64]", "replay.kind=uniform",
                "agent.batch_size=64"]


def run(encoder: str, seed: int, steps: int, extra: list[str]) -> dict:
    from howsure import training as train

    overrides = [f"seed={seed}", f"total_steps={steps}", "log.quiet=true", "torch_threads=1",
                 "checkpoint_replay=false", *(FEED_FORWARD if encoder == "mlp" else []), *extra]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = wiring.load(PRESET, overrides + [f"run_dir={tmp}"])
        t0 = time.perf_counter()
        summary = train.train(cfg, Path(tmp))
        wall = time.perf_counter() - t0
        evals = json.loads(json.dumps(_evals(Path(tmp))))
    reached = next((s for s, r in evals if r >= 475), None)
    return {"encoder": encoder, "seed": seed, "max_steps": steps, "overrides": extra,
            "steps_to_475": reached, "best_eval_return": summary["best_eval_return"],
            "steps_run": summary["step"], "interrupted": summary["interrupted"],
            "wall_seconds": round(wall, 1), "evals": evals}


def _evals(run_dir: Path) -> list[list[float]]:
    from howsure.logger import read_scalars

    return [[int(s), float(v)] for s, v in read_scalars(run_dir).get("eval/episodic_return", [])]


def summarize(results: list[dict]) -> dict:
    out = {}
    for enc in sorted({r["encoder"] for r in results}):
        rs = [r for r in results if r["encoder"] == enc]
        out[enc] = {"seeds": [r["seed"] for r in rs],
                    "reached_475": sum(r["steps_to_475"] is not None for r in rs),
                    "steps_to_475": [r["steps_to_475"] for r in rs],
                    "best_eval_return": [r["best_eval_return"] for r in rs]}
    return out


@cli_main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2])
    p.add_argument("--encoders", nargs="+", default=["lstm", "mlp"], choices=["lstm", "mlp"])
    p.add_argument("--steps", type=positive_int, default=200_000, help="agent steps per run at most")
    p.add_argument("--fresh", action="store_true", help="drop earlier results instead of merging")
    p.add_argument("overrides", nargs="*", help="extra key=value config overrides for every run")
    args = p.parse_args()
    if args.fresh:
        RESULTS.unlink(missing_ok=True)
    old = []
    for enc in args.encoders:
        for seed in args.seeds:
            started = machine.describe()
            r = {**run(enc, seed, args.steps, args.overrides), "machine": machine.ended(started)}
            # read again just before writing: another invocation may have merged its seeds meanwhile
            old = json.loads(RESULTS.read_text())["runs"] if RESULTS.is_file() else []
            old = [o for o in old if (o["encoder"], o["seed"]) != (enc, seed)] + [r]
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps({"summary": summarize(old), "runs": old}, indent=1))
            print(json.dumps({k: v for k, v in r.items() if k not in ("evals", "machine")}), file=sys.stderr,
                  flush=True)
    print(json.dumps({"summary": summarize(old), "runs": old}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
