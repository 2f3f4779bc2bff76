"""Where one Nature-DQN update's time goes on this CPU, and what the candidate speed-ups change.

The update of benchmarks/throughput.py's learner bound (configs/dqn_pong.yaml: Nature CNN at
84x84, batch 32, centered RMSProp, float32) on random screens, with howsure's own agent:

  parts      milliseconds of the online forward pass, the target network's forward pass, the
             backward pass and the optimizer step, each averaged over --updates updates
  variants   milliseconds per whole update (agent.update), each variant in its own process,
             the variants interleaved --rounds times so a drift of the machine's speed hits all:
               plain           as the loop runs it
               channels_last   both networks in channels-last memory format
               compiled_opt    torch.compile of the optimizer step (one fused loop over the weights)
               both            channels_last + compiled_opt
               compiled_nets   torch.compile of both networks
               keep_grads      zero_grad(set_to_none=False): gradient buffers are reused
             and three ways to spend 2 cores differently, each with compiled_opt (the loop's
             `auto` choice on a CPU with a C++ compiler) so it compares against compiled_opt:
               space_to_depth  the first convolution (8x8, stride 4, 4 channels) computed as a
                               2x2 stride-1 convolution over 4x4 blocks (64 channels): the same
                               weights and sums, a shape oneDNN may run faster
               target_thread   the target network's forward pass on a second thread while the
                               online one runs, one OpenMP thread each; backward and step on both
               half_batches    each core runs forward and backward on half the batch with one
                               OpenMP thread; the gradients add up, the step runs on both

  --primitives  instead of timing, each variant's oneDNN kernels (ONEDNN_VERBOSE): milliseconds
               per update by kind (convolution, reorder), implementation, pass and layer shape,
               so a CPU's slow kernel shows by name; the update's floating-point operations and
               what they take at the CPU's float32 peak (--peak-gflops) come with it

    python benchmarks/update_variants.py --json benchmarks/results/update_variants_avx2.json
    python benchmarks/update_variants.py --primitives --only compiled_opt channels_last --peak-gflops 157
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.throughput, run as a script

from benchmarks.report import finish  # noqa: E402
from howsure.errors import cli_main  # noqa: E402

VARIANTS = ("plain", "channels_last", "compiled_opt", "both", "compiled_nets", "keep_grads", "space_to_depth",
            "target_thread", "half_batches")
THREADED = ("target_thread", "half_batches")
MARKS = ("-- timed updates begin --", "-- timed updates end --")


def build(variant: str):
    import torch

    from benchmarks.throughput import bare_update

    _, agent, batch = bare_update([])
    if variant in ("channels_last", "both"):
        agent.q.to(memory_format=torch.channels_last)
        agent.target.to(memory_format=torch.channels_last)
    if variant in ("compiled_opt", "both", "space_to_depth", *THREADED):
        agent.optimizer.step = torch.compile(agent.optimizer.step)
    if variant == "space_to_depth":
        with torch.no_grad():
            before = agent.q.encoder(batch.obs)
        for net in (agent.q, agent.target):
            net.encoder.forward = space_to_depth_forward(net.encoder)
        with torch.no_grad():  # the same function, up to the order of the float sums
            torch.testing.assert_close(agent.q.encoder(batch.obs), before, rtol=1e-4, atol=1e-4)
    if variant in THREADED:
        agent.update = threaded_update(agent, variant)
    if variant == "compiled_nets":
        agent.q, agent.target = torch.compile(agent.q), torch.compile(agent.target)
    if variant == "keep_grads":
        zero = agent.optimizer.zero_grad
        agent.optimizer.zero_grad = lambda set_to_none=True: zero(set_to_none=False)
    return agent, batch


def blocks(t, k: int):
    """(B, C, H, W) -> (B, C*k*k, H/k, W/k): each k x k block of pixels as channels (c, row, column)."""
    b, c, h, w = t.shape
    return t.view(b, c, h // k, k, w // k, k).permute(0, 1, 3, 5, 2, 4).reshape(b, c * k * k, h // k, w // k)


def space_to_depth_forward(encoder):
    """The Nature encoder's forward pass with its 8x8 stride-4 convolution as a 2x2 stride-1
    convolution over 4x4 blocks: kernel tap (4i + a, 4j + b) of channel c becomes tap (i, j) of
    channel (c, a, b), so the output is the same sum of the same products."""
    import torch.nn.functional as F

    conv1, rest = encoder.convs[0], encoder.convs[1:]

    def forward(obs):
        x = blocks(obs, 4).float() / encoder.scale
        return encoder.fc(rest(F.conv2d(x, blocks(conv1.weight, 4), conv1.bias)))
    return forward


def threaded_update(agent, variant: str):
    """agent.update with a second Python thread (one OpenMP thread each) for part of the work."""
    from concurrent.futures import ThreadPoolExecutor

    import torch
    import torch.nn.functional as F
    from howsure.agents.dqn import td_loss, td_target
    from howsure.replay.batch import Batch

    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,))
    pool.submit(lambda: None).result()
    torch.set_num_threads(threads)  # the worker's call sets the process-wide (MKL) count too

    def targets(b):
        with torch.no_grad():
            return td_target(b.rewards, b.discounts, agent.target(b.next_obs), None)

    def target_thread(b):
        torch.set_num_threads(1)
        pending = pool.submit(targets, b)
        q = agent.q(b.obs).gather(1, b.actions.unsqueeze(1)).squeeze(1)
        target = pending.result()
        torch.set_num_threads(threads)
        loss, _ = td_loss(q, target, "huber", None)
        agent.apply_gradients(loss)

    def half(b, n: int):
        q = agent.q(b.obs).gather(1, b.actions.unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q, targets(b), reduction="sum") / n  # the two halves add to the mean
        loss.backward()

    def half_batches(b):
        n, h = len(b.actions), len(b.actions) // 2
        first, second = (Batch(*(t[s] for t in (b.obs, b.actions, b.rewards, b.next_obs, b.discounts)))
                         for s in (slice(None, h), slice(h, None)))
        agent.optimizer.zero_grad(set_to_none=True)
        torch.set_num_threads(1)
        pending = pool.submit(half, second, n)
        half(first, n)
        pending.result()
        torch.set_num_threads(threads)
        torch.nn.utils.clip_grad_norm_(agent._params, agent.cfg.max_grad_norm, foreach=True)
        agent.optimizer.step()

    return target_thread if variant == "target_thread" else half_batches


def time_variant(variant: str, updates: int, marked: bool = False) -> float:
    agent, batch = build(variant)
    for _ in range(5):  # warm-up, compilation included
        agent.update(batch)
    if marked:  # oneDNN's verbose lines of the timed updates lie between the marks
        print(MARKS[0], flush=True)
    t0 = time.perf_counter()
    for _ in range(updates):
        agent.update(batch)
    seconds = time.perf_counter() - t0
    if marked:
        print(MARKS[1], flush=True)
    return seconds / updates * 1000


def update_flops(batch: int = 32) -> int:
    """Floating-point operations of one update of the Nature CNN (84x84x4, 6 actions): the online
    and target forward passes, and the backward pass's weight gradients (every layer) and input
    gradients (every layer but the first, whose input is the screen)."""
    layers = [(20 * 20, 32, 4 * 8 * 8), (9 * 9, 64, 32 * 4 * 4), (7 * 7, 64, 64 * 3 * 3), (1, 512, 3136), (1, 6, 512)]
    macs = [positions * out * fan_in for positions, out, fan_in in layers]
    forward = sum(macs)
    backward = forward + sum(macs[1:])
    return 2 * batch * (2 * forward + backward)


def kernel_ms(lines: list[str], updates: int) -> dict[str, float]:
    """oneDNN's verbose exec lines -> ms per update of each kernel (kind, implementation, pass and,
    for convolutions and products, the problem's shape), the costliest first."""
    totals: dict[str, float] = {}
    for line in lines:  # onednn_verbose,v1,primitive,exec,cpu,KIND,IMPL,PASS,...,SHAPE,MS
        f = line.split(",")
        if f[0] != "onednn_verbose" or "primitive" not in f or "exec" not in f:
            continue
        kind, impl, pass_ = f[f.index("exec") + 2:f.index("exec") + 5]
        shape = f" {f[-2]}" if kind in ("convolution", "matmul", "inner_product") else ""
        key = f"{kind} {impl} {pass_}{shape}"
        totals[key] = totals.get(key, 0.0) + float(f[-1])
    return {k: round(v / updates, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def primitives(variant: str, updates: int) -> dict:
    """ms per update of each oneDNN kernel the variant's update runs (ONEDNN_VERBOSE=1)."""
    import os

    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    out = subprocess.run([sys.executable, __file__, "--variant", variant, "--updates", str(updates), "--marked"],
                         check=True, capture_output=True, text=True, env=env).stdout.splitlines()
    ms = kernel_ms(out[out.index(MARKS[0]) + 1:out.index(MARKS[1])], updates)
    return {"ms_per_update": ms, "onednn_ms_per_update": round(sum(ms.values()), 2),
            "whole_update_ms_with_verbose": round(json.loads(out[-1]), 2),  # logging slows it a little
            "reorder_ms_per_update": round(sum(v for k, v in ms.items() if k.startswith("reorder")), 2)}


def time_parts(updates: int) -> dict[str, float]:
    import torch
    from howsure.agents.dqn import td_loss, td_target

    agent, batch = build("plain")
    totals = dict.fromkeys(("online_forward", "target_forward", "backward", "optimizer"), 0.0)
    for i in range(updates + 5):
        t0 = time.perf_counter()
        q = agent.q(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        t1 = time.perf_counter()
        with torch.no_grad():
            target = td_target(batch.rewards, batch.discounts, agent.target(batch.next_obs), None)
        t2 = time.perf_counter()
        loss, _ = td_loss(q, target, "huber", None)
        agent.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        agent.optimizer.step()
        t4 = time.perf_counter()
        if i >= 5:
            for key, a, b in (("online_forward", t0, t1), ("target_forward", t1, t2), ("backward", t2, t3),
                              ("optimizer", t3, t4)):
                totals[key] += (b - a) * 1000
    return {k: round(v / updates, 2) for k, v in totals.items()}


@cli_main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--updates", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--json", type=Path)
    p.add_argument("--primitives", action="store_true", help="oneDNN's kernels per variant instead of timings")
    p.add_argument("--peak-gflops", type=float, help="this CPU's float32 peak, for the floor of one update")
    p.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one timing, in a child process
    p.add_argument("--marked", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.peak_gflops is not None and args.peak_gflops <= 0:
        p.error(f"--peak-gflops must be positive (this CPU's float32 GFLOP/s, e.g. 157), not {args.peak_gflops}")
    if args.variant:
        print(json.dumps(time_variant(args.variant, args.updates, args.marked)))
        return 0

    from howsure import machine

    result = {"config": "configs/dqn_pong.yaml", "batch": 32, "updates": args.updates,
              "machine": machine.describe(), "date": time.strftime("%Y-%m-%d")}
    if args.primitives:
        flops = update_flops()
        result["gflop_per_update"] = round(flops / 1e9, 3)
        if args.peak_gflops:
            result["peak_gflops"] = args.peak_gflops
            result["ms_at_peak"] = round(flops / args.peak_gflops / 1e6, 2)
        result["primitives"] = {v: primitives(v, args.updates) for v in args.only}
        return finish(result, args.json)
    result["rounds"] = args.rounds
    result["parts_ms"] = time_parts(args.updates)
    samples: dict[str, list[float]] = {v: [] for v in args.only}
    for _ in range(args.rounds):
        for variant in args.only:
            out = subprocess.run([sys.executable, __file__, "--variant", variant, "--updates", str(args.updates)],
                                 check=True, capture_output=True, text=True).stdout
            samples[variant].append(round(json.loads(out.strip().splitlines()[-1]), 2))
    result["ms_per_update_median"] = {v: statistics.median(s) for v, s in samples.items()}
    result["ms_per_update_samples"] = samples
    return finish(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
