"""Training speed on Pong: howsure's DQN loop vs stable-baselines3's DQN, and the hardware limits.

Same Nature-DQN hyperparameters for both (Nature CNN, batch 32, one update every 4 agent steps,
target sync every 1,000 steps); speed is measured after learning starts, so it includes updates.

  env_only_sps       the preprocessed env alone (84x84, frame skip 4, stack 4), random actions
  learner_bound_sps  4 / (seconds of one bare DQN update on a full batch), in the fastest of the
                     modes the loop offers (float32, bf16, each with and without flushing
                     denormals, with flushing and a compiled optimizer step, and with those plus
                     channels-last convolutions and glibc keeping freed memory): the most a loop
                     that updates every 4 steps can reach on this CPU;
                     every mode's bound is kept (learner_bounds_sps)
  howsure_sps        the `ale_vector4` row: every speed switch `auto` (decided for this CPU by
                     howsure/runtime.py, as configs/dqn_pong_fast.yaml sets them), 4 games on
                     ale-py's C++ vector env: the fastest loop howsure offers for this update
  sb3_sps            stable-baselines3's DQN with the same settings
  ratio_vs_sb3       howsure_sps / sb3_sps, and
  fraction_of_limit  howsure_sps / learner_bound_sps: each the median over rounds of the ratio
                     within a round (the headline row and the peer run right after the bound, so
                     a shared host's drifting speed moves all three alike); the ratios of the
                     medians are kept as well (ratio_of_medians)

Every speed switch is measured on its own against the plain loop, in the same run:

  flush_denormal     flush_denormal=true
  bf16_autocast      agent.bf16_autocast=true (encoder in bfloat16; head and loss in float32)
  channels_last      agent.channels_last=true (convolutions in NHWC memory)
  reuse_freed_memory reuse_freed_memory=true (glibc keeps freed memory: no page faults per update)
  fast               flush_denormal + bf16_autocast
  auto               bf16_autocast, flush_denormal, compile_optimizer, channels_last and
                     reuse_freed_memory all auto: the preset's switches, on one gymnasium game as
                     the preset runs it
  learner_thread     fast + learner_thread=true (updates on a thread while the loop acts)
  env_workers        fast + env.env_workers=true (envs in worker processes, stepping during the update)
  num_envs4          fast + env.num_envs=4 (4 games, one batched forward pass per update)
  ale_vector         auto + env.backend=ale_vector (ale-py's C++ games step while the update runs)
  ale_vector4        ale_vector + env.num_envs=4 (all 4 steps an update is owed overlap it,
                     acting is one batched forward pass); howsure_sps

A row that forces a mode whose bare update is under a quarter of the fastest (bf16 on a CPU
without native bf16) is timed over a tenth of --steps (shortened_rows in the JSON).

Every row, and stable-baselines3, runs in a fresh process: reuse_freed_memory changes glibc's
allocator for the rest of a process, so a row after it would not measure what its switches say,
and the peer runs with the allocator its users get.

fraction_of_limit compares that loop with the fastest bare update this CPU can do. Env steps/s
counts steps of all games together; both loops make one update per 4 of them.

  own_update_fraction  also reported, not a goal: howsure_sps / the bare update the headline row's
                       own process times right after its loop (same agent, switches and memory,
                       OWN_UPDATES updates on a full batch), median over rounds. The bound and the
                       loop run in different processes, and fresh processes of the same bare update
                       differ by up to a third on a shared host; this figure is what the loop keeps
                       of its own process's update (docs/throughput.md)

    python benchmarks/throughput.py --steps 4000 --rounds 5 --json benchmarks/results/throughput.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

from benchmarks.report import finish, positive_int  # noqa: E402
from howsure.errors import UserError, cli_main  # noqa: E402

ENV_ID = "ALE/Pong-v5"
WARMUP = 1_000  # agent steps before learning starts (not timed)
OWN_UPDATES = 200  # bare updates the headline row's process times after its loop (own_update_fraction)


def overrides(steps: int, extra: list[str]) -> list[str]:
    return [f"total_steps={WARMUP + steps}", f"agent.learning_starts_steps={WARMUP}", "agent.train_every_steps=4",
            "agent.target_update_every_updates=250", "agent.batch_size=32", "replay.capacity_steps=20000",
            "eval.every_steps=0", "checkpoint_every_steps=0", "checkpoint_replay=false", "log.quiet=true",
            f"log.every_steps={steps // 4}", *extra]


def howsure_sps(steps: int, extra: list[str], own_updates: int = 0):
    """Env steps/s of the loop with `extra` overrides; with own_updates, (that, 4 / seconds per bare
    update of the loop's own agent timed right after the loop in this process)."""
    from howsure import wiring
    from howsure.logger import read_scalars
    from howsure.training import Hooks, prepare_run_dir, train

    built = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = wiring.load(ROOT / "configs" / "dqn_pong.yaml", overrides(steps, [f"run_dir={tmp}/run", *extra]))
        cfg, run_dir = prepare_run_dir(cfg, overwrite=True)
        train(cfg, run_dir, hooks=Hooks(on_start=lambda agent, spec: built.append(agent)))
        sps = [v for s, v in read_scalars(run_dir)["charts/SPS"] if s > WARMUP + steps // 4]
    loop = sum(sps) / len(sps)
    if not own_updates:
        return loop
    return loop, time_updates(built[0], random_batch(), own_updates)


def random_batch():
    """A full batch of 32 random Pong screens (what the bare updates are timed on)."""
    import numpy as np
    import torch
    from howsure.replay.batch import Batch

    obs = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (32, 4, 84, 84), dtype=np.uint8))
    return Batch(obs, torch.zeros(32, dtype=torch.int64), torch.zeros(32), obs.clone(), torch.full((32,), 0.99))


def time_updates(agent, batch, updates: int, max_seconds: float = 15.0) -> float:
    """4 / seconds per update of `agent` on `batch`, after 3 untimed ones, over `updates` updates
    or `max_seconds` (at least 5)."""
    for _ in range(3):
        agent.update(batch)
    t0 = time.perf_counter()
    done = 0
    while done < updates and (done < 5 or time.perf_counter() - t0 < max_seconds):
        agent.update(batch)
        done += 1
    return 4 / ((time.perf_counter() - t0) / done)


def env_only_sps(steps: int) -> float:
    import numpy as np
    from howsure.envs import make_env

    from howsure import wiring

    env = make_env(wiring.load(ROOT / "configs" / "dqn_pong.yaml").env)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        *_, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def bare_update(extra: list[str]):
    """(resolved config, agent, batch): configs/dqn_pong.yaml's DQN with `extra` overrides (auto
    switches decided for this CPU) and a full batch of 32 random screens, for timing bare updates."""
    from howsure.agents import make_agent
    from howsure.envs import make_env, spec_of

    from howsure import wiring
    from howsure.runtime import resolve_auto

    cfg, _ = resolve_auto(wiring.load(ROOT / "configs" / "dqn_pong.yaml", extra))
    agent = make_agent(cfg, spec_of(ENV_ID, make_env(cfg.env)))
    return cfg, agent, random_batch()


def learner_bound_sps(updates: int, extra: list[str], max_seconds: float = 15.0) -> float:
    """4 / seconds per bare update, over `updates` updates or `max_seconds` (a slow mode, such as
    bf16 on a CPU without native bf16, is timed for as long as a fast one)."""
    import torch

    from howsure.runtime import configure_torch

    cfg, agent, batch = bare_update(extra)
    configure_torch(dataclasses.replace(cfg, torch_threads=0))  # flush_denormal as the mode says
    sps = time_updates(agent, batch, updates, max_seconds)
    torch.set_flush_denormal(False)
    return sps


def sb3_sps(steps: int) -> float:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    from howsure import envs  # noqa: F401  registers the ALE ids

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == WARMUP:
                self.t0 = time.perf_counter()
            return True

    def make():
        env = gym.make(ENV_ID, frameskip=1, repeat_action_probability=0.25)
        return AtariWrapper(env, terminal_on_life_loss=True, clip_reward=True)

    venv = VecFrameStack(DummyVecEnv([make]), n_stack=4)
    model = DQN("CnnPolicy", venv, buffer_size=20_000, learning_starts=WARMUP, batch_size=32, train_freq=4,
                gradient_steps=1, target_update_interval=1_000, learning_rate=2.5e-4, optimize_memory_usage=False,
                seed=0, device="cpu", verbose=0)
    clock = Clock()
    model.learn(total_timesteps=WARMUP + steps, callback=clock)
    return steps / (time.perf_counter() - clock.t0)


FAST = ["flush_denormal=true", "agent.bf16_autocast=true"]
AUTO = ["flush_denormal=auto", "agent.bf16_autocast=auto", "agent.compile_optimizer=auto", "agent.channels_last=auto",
        "reuse_freed_memory=auto"]
COMPILED = ["agent.compile_optimizer=true"]
NHWC_REUSE = ["agent.channels_last=true", "reuse_freed_memory=true"]
# in the order they are timed: the modes that set reuse_freed_memory (lasting for the process) last
BARE_MODES = {"float32": [], "float32+flush": ["flush_denormal=true"], "bf16": ["agent.bf16_autocast=true"],
              "bf16+flush": FAST, "float32+flush+compiled": ["flush_denormal=true", *COMPILED],
              "bf16+flush+compiled": [*FAST, *COMPILED],
              "float32+flush+compiled+nhwc+reuse": ["flush_denormal=true", *COMPILED, *NHWC_REUSE],
              "bf16+flush+compiled+nhwc+reuse": [*FAST, *COMPILED, *NHWC_REUSE]}
HEADLINE = "ale_vector4"  # the row howsure_sps reports (see the docstring)
SWITCHES = {
    "auto": AUTO,
    "plain": [],
    "flush_denormal": ["flush_denormal=true"],
    "bf16_autocast": ["agent.bf16_autocast=true"],
    "channels_last": ["agent.channels_last=true"],
    "reuse_freed_memory": ["reuse_freed_memory=true"],
    "fast": FAST,
    "learner_thread": [*FAST, "learner_thread=true"],
    "env_workers": [*FAST, "env.env_workers=true"],
    "num_envs4": [*FAST, "env.num_envs=4"],
    "ale_vector": [*AUTO, "env.backend=ale_vector"],
    "ale_vector4": [*AUTO, "env.backend=ale_vector", "env.num_envs=4"],
}


SLOW = 0.25  # a row whose forced mode's bare update is under this share of the round's fastest


def row_steps(steps: int, extra: list[str], bounds: dict[str, float]) -> int:
    """Agent steps to time a switch row over: `steps`, or a tenth of them (at least 400) for a row
    that forces a mode whose bare update ran under a quarter of this round's fastest mode: bf16
    autocast on a CPU without native bf16 runs near 8 steps/s against 100, so 4,000 steps would take
    9 minutes per row and round and measure the same rate as 400. The row's mode is the largest
    BARE_MODES entry its overrides contain."""
    mode = max((m for m, e in BARE_MODES.items() if set(e) <= set(extra)), key=lambda m: len(BARE_MODES[m]))
    return max(400, steps // 10) if bounds[mode] < SLOW * max(bounds.values()) else steps


def _child(conn, fn, args) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as err:  # noqa: BLE001  reported in the parent, which fails with it
        conn.send(("error", f"{type(err).__name__}: {err}"))


def isolated(fn, *args):
    """fn(*args) in a fresh process (spawned, not daemonic: a row's env workers are its children)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(there, fn, args))
    proc.start()
    there.close()  # the child's end stays open only in the child, so its death ends recv()
    try:
        status, value = here.recv()
    except EOFError:  # it died before sending
        proc.join()
        status, value = "error", f"the process died (exit code {proc.exitcode})"
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{fn.__name__}{args}: {value}")
    return value


def all_bounds(updates: int) -> dict[str, float]:
    """learner_bound_sps of every BARE_MODES entry, in order, in this process."""
    return {mode: learner_bound_sps(updates, extra) for mode, extra in BARE_MODES.items()}


def rounded(v):
    if isinstance(v, dict):
        return {k: rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [rounded(x) for x in v]
    return round(v, 3) if isinstance(v, float) else v


def summarize(samples: dict[str, list[float]], headline: str) -> dict:
    """The reported figures from every round's samples. The bound's mode is the one with the
    fastest median; ratio_vs_sb3 and fraction_of_limit are medians of ratios within a round,
    where the headline row, the peer and the bound were measured minutes apart."""
    import statistics

    med = {k: statistics.median(v) for k, v in samples.items()}
    bounds = {k.split(":", 1)[1]: v for k, v in med.items() if k.startswith("bound:")}
    mode = max(bounds, key=bounds.get)
    head = samples[f"switch:{headline}"]
    per_round = {"ratio_vs_sb3": [h / p for h, p in zip(head, samples["sb3_sps"])],
                 "fraction_of_limit": [h / b for h, b in zip(head, samples[f"bound:{mode}"])]}
    own = samples.get(f"own_update:{headline}")  # runs saved before this figure existed have none
    own_fractions = [h / o for h, o in zip(head, own or [])]
    extra = {} if not own else {"own_update_fraction": statistics.median(own_fractions),
                                "own_update_fractions": own_fractions}
    return {"env_only_sps": med["env_only_sps"],
            "learner_bound_sps": bounds[mode], "learner_bound_mode": mode, "learner_bounds_sps": bounds,
            "howsure_sps": med[f"switch:{headline}"],
            "switches_sps": {k.split(":", 1)[1]: v for k, v in med.items() if k.startswith("switch:")},
            "sb3_sps": med["sb3_sps"],
            "ratio_vs_sb3": statistics.median(per_round["ratio_vs_sb3"]),
            "fraction_of_limit": statistics.median(per_round["fraction_of_limit"]),
            "per_round": per_round,
            "ratio_of_medians": {"ratio_vs_sb3": med[f"switch:{headline}"] / med["sb3_sps"],
                                 "fraction_of_limit": med[f"switch:{headline}"] / bounds[mode]}, **extra}


@cli_main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=positive_int, default=4_000, help="timed agent steps after learning starts")
    p.add_argument("--rounds", type=positive_int, default=5,
                   help="every quantity is measured once per round, rounds in turn; medians are reported "
                        "(load on the machine drifts, and alternation spreads it over all of them; on a "
                        "shared host one round in three can run at two thirds of the others' speed)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--only", nargs="*", choices=list(SWITCHES), help="measure only these switch rows")
    p.add_argument("--summarize", metavar="JSON",
                   help="measure nothing: recompute the reported figures of a saved run from its samples")
    args = p.parse_args()
    if args.summarize:
        path = Path(args.summarize)
        try:
            saved = json.loads(path.read_text())  # a missing file: cli_main's one line
            saved.update(rounded(summarize(saved["samples"], saved["howsure_row"])))
        except json.JSONDecodeError as err:
            raise UserError(f"{path} is not JSON ({err.msg}, line {err.lineno}); give the file --json wrote") from None
        except (KeyError, TypeError, AttributeError):
            raise UserError(f"{path} holds no samples of the headline row and stable-baselines3 (a run from "
                            "before the paired ratios, or not a throughput.py result); measure again") from None
        path.write_text(json.dumps(saved, indent=2) + "\n")
        print(json.dumps({k: saved[k] for k in ("howsure_sps", "ratio_vs_sb3", "fraction_of_limit")}))
        return
    import torch

    from howsure import machine

    names = args.only or list(SWITCHES)
    headline = next((n for n in (HEADLINE, "auto") if n in names), names[0])
    host = machine.describe()  # CPU model, cores, AMX/AVX-512 BF16/AVX2 flags, torch, load at the start
    samples: dict[str, list[float]] = {}
    shortened: dict[str, int] = {}  # rows timed over fewer steps (row_steps), and how many

    def record(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)
        print(f"round {len(samples[key])}: {key} {value:.1f}", file=sys.stderr, flush=True)

    for _ in range(args.rounds):
        record("env_only_sps", isolated(env_only_sps, args.steps))
        bounds = isolated(all_bounds, 200)
        for mode, sps in bounds.items():
            record(f"bound:{mode}", sps)
        # the headline row, then the peer, right after the bound: the three quantities the
        # ratios compare are measured minutes apart, not a round apart, so drift in the machine's
        # speed (shared hosts) moves them together
        loop, own = isolated(howsure_sps, args.steps, SWITCHES[headline], OWN_UPDATES)
        record(f"switch:{headline}", loop)
        record(f"own_update:{headline}", own)
        record("sb3_sps", isolated(sb3_sps, args.steps))
        for name in names:
            if name != headline:
                steps = row_steps(args.steps, SWITCHES[name], bounds)
                if steps < args.steps:
                    shortened[name] = steps
                record(f"switch:{name}", isolated(howsure_sps, steps, SWITCHES[name]))
    from howsure import wiring
    from howsure.runtime import resolve_auto

    _, chosen = resolve_auto(wiring.load(ROOT / "configs" / "dqn_pong.yaml", AUTO))
    result = {"env_id": ENV_ID, "timed_steps": args.steps, "rounds": args.rounds,
              "torch_threads": torch.get_num_threads(), "howsure_row": headline,
              "howsure_overrides": SWITCHES[headline], "auto_chose": chosen, **summarize(samples, headline),
              "shortened_rows": shortened}
    result["samples"] = samples  # every round's value, for the spread
    result["machine"] = host
    finish(rounded(result), args.json)


if __name__ == "__main__":
    main()
