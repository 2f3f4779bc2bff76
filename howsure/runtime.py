"""How torch runs on this machine: the speed switches, `auto` ones decided here, then applied.

`auto` decides from what the CPU offers, so a preset is fast on every machine:
  agent.bf16_autocast  bfloat16 only where the CPU computes it natively (AMX or AVX-512 BF16);
                       elsewhere torch emulates it and an update takes 2x (AVX-512) to 10x (AVX2)
                       as long
  agent.channels_last  on for float32 CPU training: oneDNN's NHWC convolutions skip the layout
                       reorders and compute the first layer's weight gradient about twice as fast;
                       with bf16 autocast on only where the CPU has AMX (there the bare update ran
                       18% faster in NHWC, the loop 14%), off on AVX-512 BF16 alone, where the loop
                       measured no faster with it (Zen 4)
  flush_denormal       on (x86 handles subnormal floats in microcode; flushing them is free)
  reuse_freed_memory   on where the C library is glibc: freed memory stays in the process for the
                       next update instead of being returned to the OS and faulted in again
  torch_threads        torch's default, one thread per core
  learner_thread       on with 4 or more cores: acting then has a core the update leaves idle;
                       on 2 cores the update already uses both and a thread only adds contention
  agent.compile_optimizer  on for CPU training where a C++ compiler is installed (torch.compile
                       needs one): the optimizer step becomes one loop over the weights
  env.env_workers      off: worker processes pay for IPC, and on few cores they compete with the
                       update (env.backend=ale_vector steps Atari games on C++ threads instead)
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import platform
import shutil

import torch

from howsure.errors import UserError

AMX_FLAG = "amx_bf16"
BF16_FLAGS = (AMX_FLAG, "avx512_bf16")


def agent_switch(agent_cfg, name: str) -> bool | str | None:
    """agent.<name> where the agent's schema declares it (DQN's family), else None."""
    declared = {f.name for f in dataclasses.fields(agent_cfg)}
    return getattr(agent_cfg, name) if name in declared else None


def has_cxx_compiler() -> bool:
    """Whether torch.compile's CPU backend can build its kernels here."""
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def has_glibc() -> bool:
    """Whether this process's C library is glibc, whose allocator mallopt() tunes."""
    return platform.libc_ver()[0] == "glibc"


def decide(cfg, flags: set[str], cores: int, cxx: bool | None = None, glibc: bool | None = None) -> dict[str, object]:
    """The value each `auto` switch of `cfg` takes on a CPU with these flags and cores (and, for
    compile_optimizer, with or without a C++ compiler: found on the PATH unless given; for
    reuse_freed_memory, with or without glibc: this process's unless given)."""
    choices: dict[str, object] = {}
    if agent_switch(cfg.agent, "compile_optimizer") == "auto":
        cxx = has_cxx_compiler() if cxx is None else cxx
        choices["agent.compile_optimizer"] = bool(cxx and not cfg.device.startswith("cuda"))
    if agent_switch(cfg.agent, "bf16_autocast") == "auto":
        if cfg.device.startswith("cuda"):
            choices["agent.bf16_autocast"] = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        else:
            choices["agent.bf16_autocast"] = any(f in flags for f in BF16_FLAGS)
    if agent_switch(cfg.agent, "channels_last") == "auto":
        # faster in float32 (AVX2) and in bf16 on AMX; in bf16 on AVX-512 BF16 alone the loop
        # measured no faster with it (Zen 4)
        bf16 = choices.get("agent.bf16_autocast", agent_switch(cfg.agent, "bf16_autocast"))
        choices["agent.channels_last"] = not cfg.device.startswith("cuda") and (bf16 is not True or AMX_FLAG in flags)
    if cfg.flush_denormal == "auto":
        choices["flush_denormal"] = True
    if cfg.reuse_freed_memory == "auto":
        choices["reuse_freed_memory"] = has_glibc() if glibc is None else glibc
    if cfg.torch_threads == "auto":
        choices["torch_threads"] = 0
    if cfg.learner_thread == "auto":
        choices["learner_thread"] = cores >= 4
    if cfg.env.env_workers == "auto":
        choices["env.env_workers"] = False
    return choices


def resolve_auto(cfg):
    """cfg with every `auto` switch replaced by this machine's choice, and the choices made."""
    from howsure.machine import cpu_flags

    choices = decide(cfg, cpu_flags(), os.cpu_count() or 1)
    top = {k: v for k, v in choices.items() if "." not in k}
    agent = {k.split(".", 1)[1]: v for k, v in choices.items() if k.startswith("agent.")}
    env = {k.split(".", 1)[1]: v for k, v in choices.items() if k.startswith("env.")}
    if agent:
        top["agent"] = dataclasses.replace(cfg.agent, **agent)
    if env:
        top["env"] = dataclasses.replace(cfg.env, **env)
    return dataclasses.replace(cfg, **top), choices


def describe_switches(cfg) -> str:
    """The speed switches a (resolved) run uses, one line, for the log."""
    agent = [f"agent.{name}={value}" for name in ("bf16_autocast", "compile_optimizer", "channels_last")
             if (value := agent_switch(cfg.agent, name)) is not None]
    return ", ".join([*agent, f"torch_threads={cfg.torch_threads or torch.get_num_threads()}",
                      f"flush_denormal={cfg.flush_denormal}", f"reuse_freed_memory={cfg.reuse_freed_memory}",
                      f"learner_thread={cfg.learner_thread}", f"env.env_workers={cfg.env.env_workers}"])


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt() parameters (glibc's malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks up to 32 MiB come from the heap, not fresh mappings
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top is returned to the OS only beyond 1 GiB


def reuse_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse. By default it serves blocks of a few MiB (an update's
    activations and gradients) with fresh mappings, or trims them off the heap when freed, so every
    update faults its pages in again (~1,000 page faults and a few ms of kernel time per Nature-CNN
    update). Process-wide and lasting; returns whether glibc took both settings."""
    if not has_glibc():
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def configure_torch(cfg) -> None:
    """Apply `torch_threads`, `flush_denormal` and `reuse_freed_memory` (process-wide settings)
    before building anything. reuse_freed_memory=false leaves the allocator as it is: glibc has no
    way back to its adaptive defaults once they are set."""
    if cfg.reuse_freed_memory is True and not reuse_freed_memory():
        raise UserError("reuse_freed_memory=true needs glibc's allocator (Linux); set reuse_freed_memory=auto or false")
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    # Tiny gradients and Adam/RMSProp moments go subnormal late in training; x86 handles them in
    # microcode, tens of times slower. Flushing them to zero changes no result that matters.
    torch.set_flush_denormal(cfg.flush_denormal)
