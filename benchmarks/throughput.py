"""Training speed on Pong: howsure's DQN loop vs stable-baselines3's DQN, and the hardware limits.

Same Nature-DQN hyperparameters for both (Nature CNN, batch 32, one update every 4 agent steps,
target sync every 1,000 steps); speed is measured after learning starts, so it includes updates.

  env_only_sps       the preprocessed env alone (84x84, frame skip 4, stack 4), random actions
  learner_bound_sps  4 / (seconds of one bare DQN update on a full batch) in the fastest of the
                     modes the loop offers (float32, bf16, each with and without flushing
                     denormals, with flushing and a compiled optimizer step, with those plus glibc
                     keeping freed memory, and with channels-last convolutions as well): the most
                     a loop that updates every 4 steps can reach on this CPU. Every mode is timed
                     in a fresh process of its own each round (learner_bounds_sps), since glibc
                     adapts to a process's earlier frees. In the paired phase the round's fastest
                     is timed again, and so is the headline row's own mode if it is another; the
                     one with the faster median there is the bound reported (a short fresh run
                     can rank a mode first that runs slower over minutes: without kept memory,
                     bf16 on Zen 4 ran at 224 steps/s in the paired phase against 262 with it)
  howsure_sps        the `ale_vector4` row: every speed switch `auto` (decided for this CPU by
                     howsure/runtime.py, as configs/dqn_pong_fast.yaml sets them), 4 games on
                     ale-py's C++ vector env: the fastest loop howsure offers for this update
  sb3_sps            stable-baselines3's DQN with the same settings
  ratio_vs_sb3       howsure_sps / sb3_sps, and
  fraction_of_limit  howsure_sps / learner_bound_sps: each the median over cycles of the paired
                     phase of the ratio within a cycle (below); per-round medians and the ratios
                     of the medians are kept as well (per_round, ratio_of_medians)

The paired phase: the bound's modes (one or two, above), the headline loop and stable-baselines3
run in persistent processes that take turns, SEGMENT agent steps (50 updates) each per cycle,
while the others wait idle; the order reverses every other cycle, and a first cycle after each
one's warm-up is not kept. A shared host's speed drifts by a third within a minute
(docs/throughput.md), so the three figures a ratio compares are measured seconds apart, on the
same host; every cycle's figures are kept (per_cycle, samples).

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
                       OWN_UPDATES updates on a full batch, nothing else running), median over rounds

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


def howsure_sps(steps: int, extra: list[str]) -> float:
    """Env steps/s of the loop with `extra` overrides, over its log intervals after the first."""
    from howsure import wiring
    from howsure.logger import read_scalars
    from howsure.training import prepare_run_dir, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = wiring.load(ROOT / "configs" / "dqn_pong.yaml", overrides(steps, [f"run_dir={tmp}/run", *extra]))
        cfg, run_dir = prepare_run_dir(cfg, overwrite=True)
        train(cfg, run_dir)
        sps = [v for s, v in read_scalars(run_dir)["charts/SPS"] if s > WARMUP + steps // 4]
    return sum(sps) / len(sps)


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


def pong_config(extra: list[str]):
    """(config, choices): configs/dqn_pong.yaml with `extra` overrides, every `auto` switch decided
    for this CPU (howsure.runtime.resolve_auto)."""
    from howsure import wiring
    from howsure.runtime import resolve_auto

    return resolve_auto(wiring.load(ROOT / "configs" / "dqn_pong.yaml", extra))


def bare_update(extra: list[str]):
    """(resolved config, agent, batch): configs/dqn_pong.yaml's DQN with `extra` overrides (auto
    switches decided for this CPU) and a full batch of 32 random screens, for timing bare updates."""
    from howsure.agents import make_agent
    from howsure.envs import make_env, spec_of

    cfg, _ = pong_config(extra)
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


def sb3_model(total_steps: int, callback):
    """stable-baselines3's DQN on Pong with the Nature settings, trained for total_steps with callback."""
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    from howsure import envs  # noqa: F401  registers the ALE ids

    def make():
        env = gym.make(ENV_ID, frameskip=1, repeat_action_probability=0.25)
        return AtariWrapper(env, terminal_on_life_loss=True, clip_reward=True)

    venv = VecFrameStack(DummyVecEnv([make]), n_stack=4)
    model = DQN("CnnPolicy", venv, buffer_size=20_000, learning_starts=WARMUP, batch_size=32, train_freq=4,
                gradient_steps=1, target_update_interval=1_000, learning_rate=2.5e-4, optimize_memory_usage=False,
                seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=total_steps, callback=callback)


def sb3_callback(on_step):
    """A stable-baselines3 callback calling on_step(agent steps so far) after every env step."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Steps(BaseCallback):
        def _on_step(self) -> bool:
            on_step(self.num_timesteps)
            return True
    return Steps()


def sb3_sps(steps: int) -> float:
    t0 = []
    sb3_model(WARMUP + steps, sb3_callback(lambda n: t0.append(time.perf_counter()) if n == WARMUP else None))
    return steps / (time.perf_counter() - t0[0])


# The paired phase: the headline loop, the peer and the bound alternate in short segments
SEGMENT = 200  # agent steps (50 updates) per timed segment


class Pacer:
    """A paired process's side of the alternation: at each segment boundary it reports the
    segment's speed (env steps/s; "ready" at the first boundary) and waits, idle, until the parent
    says go. Only the segment between a go and the next boundary is timed."""

    def __init__(self, conn):
        self.conn, self.t0 = conn, None

    def boundary(self, steps: int) -> str:
        now = time.perf_counter()
        self.conn.send(("ready", None) if self.t0 is None else ("segment", steps / (now - self.t0)))
        message = self.conn.recv()
        self.t0 = time.perf_counter()
        return message


def at_boundary(step: int) -> bool:
    return step >= WARMUP and (step - WARMUP) % SEGMENT == 0


def paced_howsure(pacer: Pacer, cycles: int, extra: list[str]) -> float:
    """The loop with `extra` overrides, paced segment by segment; afterwards (nothing else running)
    4 / seconds per bare update of its own agent (own_update_fraction)."""
    from howsure import wiring
    from howsure.training import Hooks, prepare_run_dir, train

    built = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = wiring.load(ROOT / "configs" / "dqn_pong.yaml",
                          overrides(SEGMENT * (cycles + 1), [f"run_dir={tmp}/run", *extra]))
        cfg, run_dir = prepare_run_dir(cfg, overwrite=True)
        train(cfg, run_dir, hooks=Hooks(on_start=lambda agent, spec: built.append(agent),
                                        on_chunk=lambda chunk, step: at_boundary(step) and pacer.boundary(SEGMENT)))
    return time_updates(built[0], random_batch(), OWN_UPDATES)


def paced_sb3(pacer: Pacer, cycles: int) -> None:
    sb3_model(WARMUP + SEGMENT * (cycles + 1),
              sb3_callback(lambda n: at_boundary(n) and pacer.boundary(SEGMENT)))


def paced_bound(pacer: Pacer, extra: list[str]) -> None:
    """Bare updates in the mode `extra`, SEGMENT / 4 of them per segment, until told to stop."""
    from howsure.runtime import configure_torch

    cfg, agent, batch = bare_update(extra)
    configure_torch(dataclasses.replace(cfg, torch_threads=0))
    for _ in range(3):
        agent.update(batch)
    message = pacer.boundary(0)
    while message == "go":  # until "stop"
        for _ in range(SEGMENT // 4):
            agent.update(batch)
        message = pacer.boundary(SEGMENT)


def _paced_child(conn, fn, args) -> None:
    try:
        conn.send(("done", fn(Pacer(conn), *args)))
    except BaseException as err:  # noqa: BLE001  reported in the parent, which fails with it
        conn.send(("error", f"{type(err).__name__}: {err}"))


def alternate(members: dict[str, tuple], cycles: int) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Each member fn(pacer, *args) in a persistent process of its own (spawned); they take turns,
    one segment each per cycle (the order reversed every other cycle), the others idle at a
    boundary. Each warms up before its first boundary, and cycle 0 (first updates, a compiled
    step's compilation) is not kept. Afterwards each is told "stop" in turn and runs to its end
    alone, once the members before it have exited. Returns (each member's speeds per kept cycle,
    what each returned); a member that fails or dies raises RuntimeError naming it, and every
    process is ended."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs, conns = {}, {}

    def answer(name: str, expect: str):
        try:
            status, value = conns[name].recv()
        except EOFError:  # it died before answering
            procs[name].join()
            status, value = "error", f"the process died (exit code {procs[name].exitcode})"
        if status != expect:
            raise RuntimeError(f"{name}: {value if status == 'error' else f'{status} before {expect}'}")
        return value

    speeds: dict[str, list[float]] = {name: [] for name in members}
    returned: dict[str, object] = {}
    try:
        for name, (fn, args) in members.items():
            conns[name], there = ctx.Pipe()
            procs[name] = ctx.Process(target=_paced_child, args=(there, fn, args))
            procs[name].start()
            there.close()  # the child's end stays open only in the child, so its death ends recv()
        for name in members:
            answer(name, "ready")
        for cycle in range(cycles + 1):
            for name in list(members) if cycle % 2 == 0 else list(members)[::-1]:
                conns[name].send("go")
                sps = answer(name, "segment")
                if cycle:
                    speeds[name].append(sps)
        for name in members:
            conns[name].send("stop")
            returned[name] = answer(name, "done")
            procs[name].join()  # its exit is over before the next one finishes (own_update runs then)
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.terminate()
            proc.join()
    return speeds, returned


def paired(cycles: int, headline_extra: list[str], bound_modes: dict[str, list[str]]) -> dict:
    """Bare updates in each of `bound_modes` (name: overrides), the headline loop and
    stable-baselines3 alternating (`alternate`): {"howsure", "sb3": per-cycle env steps/s, "bounds":
    {mode: per-cycle env steps/s}, "own_update": the loop's own bare update timed alone at its end}."""
    speeds, returned = alternate({**{f"bound:{m}": (paced_bound, (extra,)) for m, extra in bound_modes.items()},
                                  "howsure": (paced_howsure, (cycles, headline_extra)),
                                  "sb3": (paced_sb3, (cycles,))}, cycles)
    return {"howsure": speeds["howsure"], "sb3": speeds["sb3"], "own_update": returned["howsure"],
            "bounds": {m: speeds[f"bound:{m}"] for m in bound_modes}}


def mode_name(cfg) -> str:
    """The BARE_MODES-style name of a resolved config's update mode, e.g. float32+flush+compiled+nhwc+reuse."""
    from howsure.runtime import agent_switch

    parts = ["bf16" if agent_switch(cfg.agent, "bf16_autocast") is True else "float32"]
    for on, name in ((cfg.flush_denormal, "flush"), (agent_switch(cfg.agent, "compile_optimizer"), "compiled"),
                     (agent_switch(cfg.agent, "channels_last"), "nhwc"), (cfg.reuse_freed_memory, "reuse")):
        if on is True:
            parts.append(name)
    return "+".join(parts)


def bound_candidates(bounds: dict[str, float], own: str, own_extra: list[str]) -> dict[str, list[str]]:
    """The modes the paired phase times as the bound: this round's fastest fresh-process mode and the
    headline row's own mode (`own`, with overrides `own_extra`), once if they are the same."""
    fastest = max(bounds, key=bounds.get)
    return {own: own_extra, **({fastest: BARE_MODES[fastest]} if fastest != own else {})}


def bound_of(paired_bounds: dict[str, list[float]]) -> str:
    """The paired bound mode with the fastest median over the round's cycles."""
    import statistics

    return max(paired_bounds, key=lambda m: statistics.median(paired_bounds[m]))


FAST = ["flush_denormal=true", "agent.bf16_autocast=true"]
AUTO = ["flush_denormal=auto", "agent.bf16_autocast=auto", "agent.compile_optimizer=auto", "agent.channels_last=auto",
        "reuse_freed_memory=auto"]
COMPILED = ["agent.compile_optimizer=true"]
NHWC_REUSE = ["agent.channels_last=true", "reuse_freed_memory=true"]
REUSE = ["reuse_freed_memory=true"]
# each timed in a fresh process (all_bounds); "+reuse" without "nhwc" is the mode `auto` gives the loop
# where it keeps NCHW convolutions (bf16 on a CPU with AVX-512 BF16 and no AMX)
BARE_MODES = {"float32": [], "float32+flush": ["flush_denormal=true"], "bf16": ["agent.bf16_autocast=true"],
              "bf16+flush": FAST, "float32+flush+compiled": ["flush_denormal=true", *COMPILED],
              "bf16+flush+compiled": [*FAST, *COMPILED],
              "float32+flush+compiled+reuse": ["flush_denormal=true", *COMPILED, *REUSE],
              "bf16+flush+compiled+reuse": [*FAST, *COMPILED, *REUSE],
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
    """learner_bound_sps of every BARE_MODES entry, each in a fresh process: glibc adapts where it
    serves large blocks from to a process's earlier frees, so a mode without reuse_freed_memory timed
    after others would fault less than it does in a loop's fresh process, and reuse_freed_memory,
    once set, lasts for the process."""
    return {mode: isolated(learner_bound_sps, updates, extra) for mode, extra in BARE_MODES.items()}


def rounded(v):
    if isinstance(v, dict):
        return {k: rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [rounded(x) for x in v]
    return round(v, 3) if isinstance(v, float) else v


def summarize(samples: dict[str, list], headline: str) -> dict:
    """The reported figures from every round's samples. With the paired phase's segments (runs since
    it exists), ratio_vs_sb3 and fraction_of_limit are medians over every cycle of the ratios within
    it, where the three were measured seconds apart, and learner_bound_sps is the median of the
    bound's segments (each round's paired_bound_mode); in older runs, medians of the ratios within a
    round (measured minutes apart), and the bound is the mode with the fastest median."""
    import statistics
    from collections import Counter

    med = {k: statistics.median(v) for k, v in samples.items() if not k.startswith("paired")}
    bounds = {k.split(":", 1)[1]: v for k, v in med.items() if k.startswith("bound:")}
    head = samples[f"switch:{headline}"]
    own = samples.get(f"own_update:{headline}")  # runs saved before this figure existed have none
    own_fractions = [h / o for h, o in zip(head, own or [])]
    extra = {} if not own else {"own_update_fraction": statistics.median(own_fractions),
                                "own_update_fractions": own_fractions}
    if "paired:howsure" in samples:
        h, peer, bound = (samples[f"paired:{k}"] for k in ("howsure", "sb3", "bound"))
        per_cycle = {"ratio_vs_sb3": [a / b for a, b in zip(h, peer)],
                     "fraction_of_limit": [a / b for a, b in zip(h, bound)]}
        n = len(h) // len(head)  # cycles per round
        per_round = {k: [statistics.median(v[i:i + n]) for i in range(0, len(v), n)] for k, v in per_cycle.items()}
        figures = {"learner_bound_sps": statistics.median(bound),
                   "learner_bound_mode": Counter(samples["paired_bound_mode"]).most_common(1)[0][0],
                   "howsure_sps": statistics.median(h), "sb3_sps": statistics.median(peer),
                   "ratio_vs_sb3": statistics.median(per_cycle["ratio_vs_sb3"]),
                   "fraction_of_limit": statistics.median(per_cycle["fraction_of_limit"]),
                   "per_round": per_round, "per_cycle": per_cycle,
                   "ratio_of_medians": {"ratio_vs_sb3": statistics.median(h) / statistics.median(peer),
                                        "fraction_of_limit": statistics.median(h) / statistics.median(bound)}}
    else:
        mode = max(bounds, key=bounds.get)
        per_round = {"ratio_vs_sb3": [h / p for h, p in zip(head, samples["sb3_sps"])],
                     "fraction_of_limit": [h / b for h, b in zip(head, samples[f"bound:{mode}"])]}
        figures = {"learner_bound_sps": bounds[mode], "learner_bound_mode": mode,
                   "howsure_sps": med[f"switch:{headline}"], "sb3_sps": med["sb3_sps"],
                   "ratio_vs_sb3": statistics.median(per_round["ratio_vs_sb3"]),
                   "fraction_of_limit": statistics.median(per_round["fraction_of_limit"]),
                   "per_round": per_round,
                   "ratio_of_medians": {"ratio_vs_sb3": med[f"switch:{headline}"] / med["sb3_sps"],
                                        "fraction_of_limit": med[f"switch:{headline}"] / bounds[mode]}}
    return {"env_only_sps": med["env_only_sps"], "learner_bounds_sps": bounds,
            "switches_sps": {k.split(":", 1)[1]: v for k, v in med.items() if k.startswith("switch:")},
            **figures, **extra}


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
    import statistics

    import torch

    from howsure import machine

    names = args.only or list(SWITCHES)
    headline = next((n for n in (HEADLINE, "auto") if n in names), names[0])
    host = machine.describe()  # CPU model, cores, AMX/AVX-512 BF16/AVX2 flags, torch, load at the start
    # the headline row's update mode, without its env switches (a bare update has no games)
    own_extra = [o for o in SWITCHES[headline] if not o.startswith("env.")]
    own = mode_name(pong_config(own_extra)[0])
    samples: dict[str, list] = {}
    shortened: dict[str, int] = {}  # rows timed over fewer steps (row_steps), and how many

    def record(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)
        print(f"round {len(samples[key])}: {key} {value:.1f}", file=sys.stderr, flush=True)

    for _ in range(args.rounds):
        record("env_only_sps", isolated(env_only_sps, args.steps))
        bounds = all_bounds(200)
        for mode, sps in bounds.items():
            record(f"bound:{mode}", sps)
        # the headline row, the peer and the bound in alternating segments of one paired phase:
        # the host's speed drifts within seconds to minutes (shared hosts), and a segment of each
        # a few seconds apart sees the same host (docs/throughput.md)
        got = paired(max(1, args.steps // SEGMENT), SWITCHES[headline], bound_candidates(bounds, own, own_extra))
        mode = bound_of(got["bounds"])
        for name, speeds in (("howsure", got["howsure"]), ("sb3", got["sb3"]), ("bound", got["bounds"][mode])):
            samples.setdefault(f"paired:{name}", []).extend(speeds)
        samples.setdefault("paired_bound_mode", []).append(mode)
        samples.setdefault("paired_bound_candidates", []).append(
            {m: statistics.median(v) for m, v in got["bounds"].items()})
        record(f"switch:{headline}", statistics.median(got["howsure"]))
        record(f"own_update:{headline}", got["own_update"])
        record("sb3_sps", statistics.median(got["sb3"]))
        record("paired_bound", statistics.median(got["bounds"][mode]))
        for name in names:
            if name != headline:
                steps = row_steps(args.steps, SWITCHES[name], bounds)
                if steps < args.steps:
                    shortened[name] = steps
                record(f"switch:{name}", isolated(howsure_sps, steps, SWITCHES[name]))

    _, chosen = pong_config(AUTO)
    result = {"env_id": ENV_ID, "timed_steps": args.steps, "rounds": args.rounds,
              "torch_threads": torch.get_num_threads(), "howsure_row": headline,
              "howsure_overrides": SWITCHES[headline], "auto_chose": chosen, **summarize(samples, headline),
              "shortened_rows": shortened}
    result["samples"] = samples  # every round's value, for the spread
    result["machine"] = host
    finish(rounded(result), args.json)


if __name__ == "__main__":
    main()
