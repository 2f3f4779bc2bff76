"""User-facing errors: one line that names the problem and the fix, exit code 2."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Callable, TypeVar

EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., int | None])


class UserError(Exception):
    """Bad input from the person running a command (config, env id, checkpoint, path)."""


def child_failure(err: subprocess.CalledProcessError) -> str:
    """One line for a child command that failed: its own last line of stderr where it was captured,
    else a pointer to the message it printed above."""
    cmd = err.cmd if isinstance(err.cmd, list) else str(err.cmd).split()
    name = next((Path(str(c)).name for c in cmd if str(c).endswith(".py")), Path(str(cmd[0])).name)
    captured = (err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr or "").strip()
    said = captured.splitlines()[-1] if captured else "its message is above"
    return f"{name} exited with code {err.returncode} ({said})"


def cli_main(main: F) -> F:
    """Run a CLI entry point: a UserError becomes one line on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except OSError as err:  # a read-only folder, a file where a folder should be, a full disk
            where = f" {err.filename}" if err.filename else ""
            print(f"error: {err.strerror or err}:{where}; check that path (space, permissions, a file in "
                  "the way) and run again", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except subprocess.CalledProcessError as err:  # a command a benchmark runs (train.py, ...) failed
            print(f"error: {child_failure(err)}", file=sys.stderr)
            sys.exit(err.returncode if err.returncode > 0 else 1)
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once, one line instead of a traceback
            print("interrupted: stopped at once; a run continues from its last checkpoint with --resume",
                  file=sys.stderr)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
