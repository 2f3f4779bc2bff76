"""The command-line front ends: howsure-train (train.py) and howsure-evaluate (evaluate.py).

Each parses its arguments and calls the library (howsure.training, howsure.evaluation); nothing
in the library imports them.
"""

import sys
from pathlib import Path


def command(tool: str) -> str:
    """How the user calls a tool ("train", "evaluate"): the checkout's script when that is what
    is running, else the console command that pip installs."""
    script = Path(sys.argv[0])
    if script.name in ("train.py", "evaluate.py") and (script.resolve().parent / "howsure").is_dir():
        return f"python {tool}.py"
    return f"howsure-{tool}"
