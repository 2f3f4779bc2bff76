"""What one learning sample costs on this CPU: bare updates of the Atari networks, and env steps.

Measures, with howsure's own agents on random screens (no env in the timed part):
  - DQN updates of batch 32 (double DQN, dueling head: three forward passes and one backward) with
    the Nature CNN at 84x84 and the 2013 network (nips_cnn) at 84x84 and 42x42, and of batch 128
    with nips_cnn at 42x42;
  - PQN minibatches of 128 (one forward and one backward) with nips_cnn + LayerNorm at 84 and 42;
and env steps per second of Pong through gymnasium's wrappers (one game) and through ale-py's C++
vector env (32 games, one thread), random actions.

    python benchmarks/update_cost.py --json benchmarks/results/update_cost.json
    python benchmarks/update_cost.py --device cuda     # the same updates on a GPU

`ms_per_sample` divides an update's time by its batch: the CPU cost of one learning sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.report import finish, positive_int  # noqa: E402
from howsure import machine  # noqa: E402
from howsure.errors import cli_main  # noqa: E402

CASES = [  # name, agent, encoder, screen, batch, extra overrides
    ("dqn_nature_cnn_84", "dqn", "nature_cnn", 84, 32, []),
    ("dqn_nips_cnn_84", "dqn", "nips_cnn", 84, 32, []),
    ("dqn_nips_cnn_42", "dqn", "nips_cnn", 42, 32, []),
    ("dqn_nips_cnn_42_b128", "dqn", "nips_cnn", 42, 128, []),
    ("pqn_nips_cnn_ln_84", "pqn", "nips_cnn", 84, 128, ["encoder.nips_cnn.layer_norm=true"]),
    ("pqn_nips_cnn_ln_42", "pqn", "nips_cnn", 42, 128, ["encoder.nips_cnn.layer_norm=true"]),
]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def update_ms(agent_name: str, encoder: str, screen: int, batch: int, extra: list[str], reps: int,
              device: str = "cpu") -> float:
    from gymnasium import spaces
    from howsure.agents import make_agent
    from howsure.envs import EnvSpec
    from howsure.replay.batch import Batch

    from howsure import wiring

    overrides = [f"agent.name={agent_name}", f"encoder.name={encoder}", "env.id=ALE/Pong-v5", f"device={device}",
                 *extra]
    if agent_name == "dqn":
        overrides += ["agent.double_dqn=true", "agent.dueling=true", f"agent.batch_size={batch}"]
    cfg = wiring.load(None, overrides)
    spec = EnvSpec("ALE/Pong-v5", spaces.Box(0, 255, (4, screen, screen), np.uint8), 6)
    agent = make_agent(cfg, spec)
    rng = np.random.default_rng(0)

    def frames(n: int) -> np.ndarray:
        return rng.integers(0, 256, (n, 4, screen, screen), dtype=np.uint8)

    if agent_name == "dqn":
        b = Batch.from_numpy(frames(batch), rng.integers(0, 6, batch), np.zeros(batch, np.float32),
                             frames(batch), np.zeros(batch, bool), 0.99)
        step = lambda: agent.update(b)  # noqa: E731
    else:
        n = 32
        rollout = [Batch.from_numpy(frames(n), rng.integers(0, 6, n), np.zeros(n, np.float32), frames(n),
                                    np.zeros(n, bool), 0.99, ends=np.zeros(n, bool))
                   for _ in range(batch * cfg.agent.minibatches // n)]  # minibatches of `batch`
        agent._prepare(rollout)

        def step():
            if not agent._queue:
                agent._prepare(rollout)
            agent._learn(1)
    for _ in range(5):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / reps * 1000


def env_sps(backend: str, steps: int) -> float:
    from howsure import envs, wiring

    n = 32 if backend == "ale_vector" else 1
    cfg = wiring.load(None, ["env.id=ALE/Pong-v5", f"env.backend={backend}", "env.sticky_action_prob=0"])
    stepper = envs.VectorStepper(envs.make_vector_env(cfg.env, n))
    stepper.reset(seed=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps // n):
        stepper.step(rng.integers(0, 6, n))
    sps = (steps // n) * n / (time.perf_counter() - t0)
    stepper.close()
    return sps


@cli_main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=positive_int, default=40, help="timed updates per case")
    p.add_argument("--env-steps", type=positive_int, default=4_000)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="torch device of the updates (cpu, cuda)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result = {"machine": machine.describe(), "device": args.device, "torch_threads": torch.get_num_threads(),
              "updates": {}, "env_sps": {}}
    for name, agent_name, encoder, screen, batch, extra in CASES:
        ms = update_ms(agent_name, encoder, screen, batch, extra, args.reps, args.device)
        result["updates"][name] = {"batch": batch, "ms_per_update": round(ms, 2), "ms_per_sample": round(ms / batch, 3)}
        print(f"{name}: {ms:.1f} ms per update of {batch}", file=sys.stderr, flush=True)
    for backend in ("gymnasium", "ale_vector"):
        result["env_sps"][backend] = round(env_sps(backend, args.env_steps), 1)
    result["date"] = time.strftime("%Y-%m-%d")
    finish(result, args.json)


if __name__ == "__main__":
    main()
