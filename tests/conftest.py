"""Shared helpers: run the CLIs as a user would, in a temp run directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the xdist workers already share every core: each process the tests start (train.py, evaluate.py,
# Ray actors) runs torch on one thread, so no process spin-waits for a core another one holds
os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_cli(script: str, *args: str, timeout: float = 600, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or ROOT)


@pytest.fixture
def cli():
    return run_cli


def run_in_process(script: str, *args: str, env: dict | None = None,
                   cwd: Path | None = None) -> subprocess.CompletedProcess:
    """train.py's or evaluate.py's entry point called in this process, with run_cli's result: its
    exit code and what it printed. No interpreter start-up (about 8 s per call on 2 cores), so
    the many one-line-error checks use it; tests/test_errors.py keeps real processes for a few, so
    nothing printed at start-up can slip past them."""
    import contextlib
    import importlib
    import io

    main = importlib.import_module(f"howsure.cli.{Path(script).stem}").main
    out, err = io.StringIO(), io.StringIO()
    old_env, old_cwd = dict(os.environ), Path.cwd()
    os.environ.update(env or {})
    os.chdir(cwd or ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args)) or 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())


def train_in_process(*args: str) -> int:
    """train.py's entry point called in this process (no interpreter start-up, torch already
    imported): its exit code, 0 or that of the one-line error."""
    from howsure.cli.train import main

    try:
        return main(list(args))
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.fixture(autouse=True)
def _threads():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_one_line(res, *needles: str) -> None:
    """A CLI subprocess refused its input: exit code 2, one 'error:' line holding every needle, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def pytest_collection_modifyitems(config, items):
    """The long learning tests (marked slow) first, so the xdist workers finish together instead of
    one of them starting a minutes-long test when the rest of the suite is done."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
