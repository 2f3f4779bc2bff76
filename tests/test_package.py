"""The package as pip installs it: everything under the howsure namespace, presets and detector
weights inside, console commands that work from any folder, and import contracts that hold
(import-linter's `lint-imports`, setup.cfg): imports point one way through the layers, with no
cycles. The wheel is built once, from a copy of the checkout, into a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("package")
CLASHING = ("train", "evaluate", "agents", "encoders", "envs", "replay", "configs")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install .` (not editable) of this checkout into a folder of its own."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build",
                                                             "runs", ".pytest_cache"))
    target = base / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--no-index", "--quiet", "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return target


def installed_env(*paths: Path) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def test_wheel_installs_only_the_howsure_namespace(installed):
    top = sorted(p.name for p in installed.iterdir())
    assert [n for n in top if n.removesuffix(".py") in CLASHING] == [], top
    assert {"howsure", "bin"} <= set(top) and all(n in ("howsure", "bin") or n.endswith(".dist-info") for n in top), top
    pkg = installed / "howsure"
    for sub in ("agents", "encoders", "envs", "replay", "cli"):
        assert (pkg / sub / "__init__.py").is_file(), sub
    assert (pkg / "configs" / "dqn_cartpole.yaml").is_file() and (pkg / "configs" / "dqn_pong_hour.yaml").is_file()
    assert (pkg / "encoders" / "detection" / "weights" / "pong.pt").is_file()
    assert {p.name for p in (installed / "bin").iterdir()} >= {"howsure-train", "howsure-evaluate", "howsure-plot"}


def test_import_contracts_hold(installed):
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not found: pip install -e '.[test]' installs import-linter")
    res = subprocess.run([exe, str(ROOT / "setup.cfg"), "--no-cache"], cwd=installed,
                         capture_output=True, text=True, timeout=300, env=installed_env(installed))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout, res.stdout[-2000:]


def test_console_commands_work_anywhere_beside_clashing_packages(installed, tmp_path):
    """howsure-train with a preset's name, run from an unrelated folder, with importable top-level
    modules named like the checkout's scripts and folders that fail when imported (as Hugging
    Face's `evaluate` did when the wheel installed a top-level `evaluate`)."""
    shadow = tmp_path / "shadow"
    for name in CLASHING:
        (shadow / name).mkdir(parents=True)
        (shadow / name / "__init__.py").write_text(f"raise ImportError('the other distribution named {name}')\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = installed_env(installed, shadow)
    where = subprocess.run([sys.executable, "-c", "import howsure.agents, howsure.cli.train as t; print(t.__file__)"],
                           capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert where.returncode == 0 and where.stdout.startswith(str(installed)), where.stdout + where.stderr
    res = subprocess.run([str(installed / "bin" / "howsure-train"), "--config", "dqn_cartpole", "total_steps=1200",
                          "run_dir=run", "--quiet"], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert (work / "run" / "checkpoints" / "final.pt").is_file()
    assert "howsure-evaluate" in res.stdout  # the hint names the installed command, not evaluate.py
    ev = subprocess.run([str(installed / "bin" / "howsure-evaluate"), "run", "--episodes", "1"],
                        capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert ev.returncode == 0 and "mean" in ev.stdout, ev.stdout[-2000:] + ev.stderr[-2000:]
    bad = subprocess.run([str(installed / "bin" / "howsure-train"), "--config", "dqn_cartpol"],
                         capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert bad.returncode == 2 and "did you mean 'dqn_cartpole'" in bad.stderr, bad.stderr


def test_ruff_is_clean():
    """ruff check with the rules of pyproject.toml, over the whole checkout."""
    exe = shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff not found: pip install -e '.[test]' installs it")
    res = subprocess.run([exe, "check", "--no-cache", str(ROOT)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
