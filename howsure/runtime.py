"""How torch runs on this machine: the speed switches, `auto` ones decided here, then applied.

`auto` decides from what the CPU offers, so a preset is fast on every machine:
  agent.bf16_autocast  bfloat16 only where the CPU computes it natively (AMX or AVX-512 BF16);
                       elsewhere torch emulates it and an update takes about twice as long
  flush_denormal       on (x86 handles subnormal floats in microcode; flushing them is free)
  torch_threads        torch's default, one thread per core
  learner_thread       on with 4 or more cores: acting then has a core the update leaves idle;
                       on 2 cores the update already uses both and a thread only adds contention
  agent.compile_optimizer  on for CPU training where a C++ compiler is installed (torch.compile
                       needs one): the optimizer step becomes one loop over the weights
  env.env_workers      off: worker processes pay for IPC, and on few cores they compete with the
                       update (env.backend=ale_vector steps Atari games on C++ threads instead)
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import torch

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def agent_switch(agent_cfg, name: str) -> bool | str | None:
    """agent.<name> where the agent's schema declares it (DQN's family), else None."""
    declared = {f.name for f in dataclasses.fields(agent_cfg)}
    return getattr(agent_cfg, name) if name in declared else None


def has_cxx_compiler() -> bool:
    """Whether torch.compile's CPU backend can build its kernels here."""
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def decide(cfg, flags: set[str], cores: int, cxx: bool | None = None) -> dict[str, object]:
    """The value each `auto` switch of `cfg` takes on a CPU with these flags and cores (and, for
    compile_optimizer, with or without a C++ compiler: found on the PATH unless given)."""
    choices: dict[str, object] = {}
    if agent_switch(cfg.agent, "compile_optimizer") == "auto":
        cxx = has_cxx_compiler() if cxx is None else cxx
        choices["agent.compile_optimizer"] = bool(cxx and not cfg.device.startswith("cuda"))
    if agent_switch(cfg.agent, "bf16_autocast") == "auto":
        if cfg.device.startswith("cuda"):
            choices["agent.bf16_autocast"] = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        else:
            choices["agent.bf16_autocast"] = any(f in flags for f in BF16_FLAGS)
    if cfg.flush_denormal == "auto":
        choices["flush_denormal"] = True
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
    agent = [f"agent.{name}={value}" for name in ("bf16_autocast", "compile_optimizer")
             if (value := agent_switch(cfg.agent, name)) is not None]
    return ", ".join([*agent, f"torch_threads={cfg.torch_threads or torch.get_num_threads()}",
                      f"flush_denormal={cfg.flush_denormal}", f"learner_thread={cfg.learner_thread}",
                      f"env.env_workers={cfg.env.env_workers}"])


def configure_torch(cfg) -> None:
    """Apply `torch_threads` and `flush_denormal` (process-wide settings) before building anything."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    # Tiny gradients and Adam/RMSProp moments go subnormal late in training; x86 handles them in
    # microcode, tens of times slower. Flushing them to zero changes no result that matters.
    torch.set_flush_denormal(cfg.flush_denormal)
