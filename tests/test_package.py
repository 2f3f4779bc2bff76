"""The import contracts of setup.cfg hold: imports point one way through the layers, with no
cycles, and no library module imports train.py or evaluate.py (import-linter's `lint-imports`)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not found: pip install -e '.[test]' installs import-linter")
    res = subprocess.run([exe, os.path.join(ROOT, "setup.cfg"), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout, res.stdout[-2000:]
