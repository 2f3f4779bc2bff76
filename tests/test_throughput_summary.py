"""benchmarks/throughput.py's reported figures follow from every round's samples."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.throughput import summarize
from tests.conftest import ROOT

SAMPLES = {
    "env_only_sps": [1000.0, 900.0, 1100.0],
    # a noisy mode that wins one round, and the mode with the fastest median
    "bound:bf16": [220.0, 100.0, 110.0],
    "bound:bf16+flush+compiled": [150.0, 180.0, 160.0],
    "switch:ale_vector4": [150.0, 171.0, 120.0],
    "sb3_sps": [75.0, 90.0, 80.0],
    "switch:auto": [140.0, 130.0, 135.0],
}


def test_bound_mode_by_median_and_ratios_paired_within_rounds():
    s = summarize(SAMPLES, "ale_vector4")
    assert s["learner_bound_mode"] == "bf16+flush+compiled" and s["learner_bound_sps"] == 160.0
    assert s["per_round"]["fraction_of_limit"] == pytest.approx([1.0, 0.95, 0.75])
    assert s["fraction_of_limit"] == pytest.approx(0.95)
    assert s["per_round"]["ratio_vs_sb3"] == pytest.approx([2.0, 1.9, 1.5])
    assert s["ratio_vs_sb3"] == pytest.approx(1.9)
    assert s["howsure_sps"] == 150.0 and s["switches_sps"] == {"ale_vector4": 150.0, "auto": 135.0}
    assert s["ratio_of_medians"]["fraction_of_limit"] == pytest.approx(150.0 / 160.0)


def summarize_cli(path):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--summarize", str(path)],
                          capture_output=True, text=True, cwd=ROOT)


def test_summarize_rewrites_a_saved_run(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"howsure_row": "ale_vector4", "samples": SAMPLES, "fraction_of_limit": 0.5}))
    out = summarize_cli(path)
    assert out.returncode == 0, out.stderr
    assert json.loads(path.read_text())["fraction_of_limit"] == pytest.approx(0.95)


@pytest.mark.parametrize("text, says", [
    (json.dumps({"samples": SAMPLES}), "measure again"),  # a run from before the paired ratios
    ('{"howsure_row": "ale_vector4", "samp', "is not JSON"),
    ("[1, 2]", "measure again"),
    (None, "No such file"),
])
def test_summarize_refuses_what_it_cannot_read_in_one_line(tmp_path, text, says):
    path = tmp_path / "run.json"
    if text is not None:
        path.write_text(text)
    out = summarize_cli(path)
    assert out.returncode == 2 and says in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert text is None or path.read_text() == text  # nothing rewritten
