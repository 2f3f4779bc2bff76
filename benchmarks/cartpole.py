"""Steps to an evaluated mean return of 475 on CartPole-v1: howsure's DQN vs stable-baselines3's.

Both are evaluated the same way: every --eval-every agent steps, --eval-episodes greedy episodes,
stop at the first evaluation whose mean reaches 475; a seed that never does reports null.
stable-baselines3 runs with the RL Zoo's tuned CartPole-v1 hyperparameters (hyperparams/dqn.yml).

    python benchmarks/cartpole.py --seeds 0 1 2 3 4 --json benchmarks/results/cartpole.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

from benchmarks.report import non_negative_int, positive_int  # noqa: E402
from howsure import machine, wiring  # noqa: E402
from howsure.errors import cli_main  # noqa: E402

TARGET = 475.0

# RL Zoo (rl-baselines3-zoo, hyperparams/dqn.yml, CartPole-v1).
ZOO = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000, gamma=0.99,
           target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
           exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))
ZOO_TOTAL_STEPS = 50_000  # the Zoo's n_timesteps; sets the length of its epsilon schedule


def run_howsure(seed: int, max_steps: int, eval_every: int, episodes: int, config: str) -> dict:
    import tempfile

    import torch

    torch.set_num_threads(1)
    from howsure.api import train

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _, summary = train(config, [f"seed={seed}", f"total_steps={max_steps}", f"eval.every_steps={eval_every}",
                                    f"eval.episodes={episodes}", f"eval.num_envs={episodes}",
                                    f"eval.stop_return={TARGET}", "log.quiet=true", f"run_dir={tmp}/run",
                                    "checkpoint_every_steps=0", "checkpoint_replay=false"])
        wall = time.perf_counter() - t0
    return {"framework": "howsure", "seed": seed, "steps_to_475": summary["stopped_at_return_step"],
            "best_eval": summary["best_eval_return"], "wall_seconds": round(wall, 1)}


def run_sb3(seed: int, max_steps: int, eval_every: int, episodes: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)

    class EvalStop(BaseCallback):
        def __init__(self):
            super().__init__()
            self.eval_env = gym.make("CartPole-v1")
            self.reached, self.best = None, None

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every:
                return True
            rewards, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=episodes, deterministic=True,
                                         return_episode_rewards=True)
            mean = sum(rewards) / len(rewards)
            self.best = mean if self.best is None else max(self.best, mean)
            if mean >= TARGET:
                self.reached = self.num_timesteps
                return False
            return True

    # The Zoo's exploration_fraction is a fraction of its own 50k-step budget: keep that schedule.
    kwargs = dict(ZOO, exploration_fraction=ZOO["exploration_fraction"] * ZOO_TOTAL_STEPS / max_steps)
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), seed=seed, verbose=0, device="cpu", **kwargs)
    callback = EvalStop()
    t0 = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=callback)
    wall = time.perf_counter() - t0
    return {"framework": "stable-baselines3", "seed": seed, "steps_to_475": callback.reached,
            "best_eval": callback.best, "wall_seconds": round(wall, 1)}


def summarize(rows: list[dict], max_steps: int) -> dict:
    reached = [r["steps_to_475"] for r in rows if r["steps_to_475"] is not None]
    # A seed that never reaches 475 counts as beyond the budget, so the median stays honest.
    padded = sorted(r["steps_to_475"] if r["steps_to_475"] is not None else float("inf") for r in rows)
    median = statistics.median(padded) if padded else None
    return {"seeds": len(rows), "seeds_reaching_475": len(reached),
            "median_steps_to_475": None if median in (None, float("inf")) else median,
            "steps_to_475": [r["steps_to_475"] for r in rows],
            "wall_seconds": [r["wall_seconds"] for r in rows]}


@cli_main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--max-steps", type=positive_int, default=150_000)
    p.add_argument("--eval-every", type=positive_int, default=2_000)
    p.add_argument("--eval-episodes", type=positive_int, default=20)
    p.add_argument("--config", default=str(ROOT / "configs" / "dqn_cartpole.yaml"))
    p.add_argument("--frameworks", nargs="+", default=["howsure", "sb3"], choices=["howsure", "sb3"])
    p.add_argument("--workers", type=positive_int, default=2)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    wiring.load(args.config, ["log.quiet=true"])  # a bad --config fails here, before any run starts
    started = machine.describe()

    jobs = []
    with ProcessPoolExecutor(args.workers) as pool:
        for seed in args.seeds:
            if "howsure" in args.frameworks:
                jobs.append(pool.submit(run_howsure, seed, args.max_steps, args.eval_every, args.eval_episodes,
                                        args.config))
            if "sb3" in args.frameworks:
                jobs.append(pool.submit(run_sb3, seed, args.max_steps, args.eval_every, args.eval_episodes))
        rows = [j.result() for j in jobs]
    result = {"benchmark": "CartPole-v1 steps to eval mean >= 475", "max_steps": args.max_steps,
              "eval_every_steps": args.eval_every, "eval_episodes": args.eval_episodes, "runs": rows,
              "machine": machine.ended(started)}
    for name, key in (("howsure", "howsure"), ("stable-baselines3", "sb3")):
        mine = [r for r in rows if r["framework"] == name]
        if mine:
            result[key] = summarize(mine, args.max_steps)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
