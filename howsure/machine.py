"""What machine a measurement ran on: CPU model, cores, the flags that decide speed, torch, load."""

from __future__ import annotations

import os
import platform
from pathlib import Path

SPEED_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx512_vnni", "avx2", "fma")


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_family_model() -> str | None:
    """"family F model M" from /proc/cpuinfo: virtual machines often name every CPU "AMD EPYC",
    and the family and model tell the generations apart (AMD family 25 holds Zen 3, AVX2 only,
    and Zen 4, with AVX-512: the model number differs)."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines()[:30] if ":" in line)
    except OSError:
        return None
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if "cpu family" not in fields or "model" not in fields:
        return None
    return f"family {fields['cpu family']} model {fields['model']}"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def describe() -> dict:
    """A JSON-ready record of this machine (call at the start; add `load_end` at the end)."""
    import torch

    flags = cpu_flags()
    return {
        "cpu_model": cpu_model(),
        "cpu_family_model": cpu_family_model(),
        "cores": os.cpu_count(),
        "flags": {f: f in flags for f in SPEED_FLAGS},
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_start": load_average(),
    }


def ended(started: dict) -> dict:
    """describe()'s record from the start of a measurement, with the load average and the date at its end."""
    import time

    return {**started, "load_end": load_average(), "date_end": time.strftime("%Y-%m-%d %H:%M")}
