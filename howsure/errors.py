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

    return wrapper  # type: ignore[return-value]
