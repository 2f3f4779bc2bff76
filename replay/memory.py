"""Fail fast when a buffer would not fit in RAM, instead of dying hours into a run."""

from __future__ import annotations

from howsure.errors import UserError


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux); elsewhere a conservative psutil-free guess."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


DEFAULT_FIX = "lower replay.capacity_steps (or use the frame-deduplicating replay.kind=atari)"


def check_fits(nbytes: int, what: str, fraction: float = 0.9, fix: str = DEFAULT_FIX) -> None:
    free = available_bytes()
    if nbytes > fraction * free:
        raise UserError(
            f"{what} needs {nbytes / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB of RAM is available; {fix}"
        )
