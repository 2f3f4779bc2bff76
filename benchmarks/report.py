"""What the benchmarks' command lines share: counts checked by argparse (a usage block, one error
line, exit code 2), and the result printed as JSON and saved with the machine's load at its end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def int_at_least(least: int):
    """An argparse type: a whole number of at least `least`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return parse


positive_int = int_at_least(1)  # steps, rounds, repetitions
non_negative_int = int_at_least(0)  # seeds


def finish(result: dict, path: str | Path | None) -> int:
    """Print `result` as JSON (its `machine` record closed with the load and date at the end) and
    also write it to `path`, creating the folder, when one is given."""
    from howsure import machine

    result["machine"] = machine.ended(result["machine"])
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    return 0
