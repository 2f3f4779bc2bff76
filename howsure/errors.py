"""User-facing errors: one line that names the problem and the fix, exit code 2."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., int | None])


class UserError(Exception):
    """Bad input from the person running a command (config, env id, checkpoint, path)."""


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
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once, one line instead of a traceback
            print("interrupted: stopped at once; a run continues from its last checkpoint with --resume",
                  file=sys.stderr)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
