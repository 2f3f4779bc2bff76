"""benchmarks/throughput.py's reported figures follow from every round's samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from benchmarks.throughput import (
    AUTO,
    BARE_MODES,
    SWITCHES,
    alternate,
    bound_candidates,
    bound_of,
    mode_name,
    pong_config,
    row_steps,
    summarize,
)
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


def test_paired_segments_give_ratios_per_cycle_and_per_round():
    paired = {**SAMPLES, "own_update:ale_vector4": [160.0, 180.0, 150.0],
              # two rounds of three cycles each, in the order the paired phase measures them
              "paired:howsure": [150.0, 100.0, 160.0, 120.0, 130.0, 140.0],
              "paired:sb3": [75.0, 80.0, 80.0, 60.0, 100.0, 70.0],
              "paired:bound": [160.0, 100.0, 200.0, 120.0, 130.0, 175.0],
              "paired_bound_mode": ["float32", "bf16"], "paired_bound": [160.0, 130.0],
              "switch:ale_vector4": [150.0, 130.0], "sb3_sps": [80.0, 70.0]}
    s = summarize(paired, "ale_vector4")
    assert s["per_cycle"]["ratio_vs_sb3"] == pytest.approx([2.0, 1.25, 2.0, 2.0, 1.3, 2.0])
    assert s["ratio_vs_sb3"] == pytest.approx(2.0)  # the median over every cycle, not over rounds
    assert s["per_round"]["ratio_vs_sb3"] == pytest.approx([2.0, 2.0])
    assert s["per_cycle"]["fraction_of_limit"] == pytest.approx([150 / 160, 1.0, 0.8, 1.0, 1.0, 0.8])
    assert s["fraction_of_limit"] == pytest.approx((150 / 160 + 1.0) / 2)
    assert s["learner_bound_sps"] == pytest.approx(145.0) and s["learner_bound_mode"] in ("float32", "bf16")
    assert s["howsure_sps"] == pytest.approx(135.0) and s["sb3_sps"] == pytest.approx(77.5)
    assert s["learner_bounds_sps"]["bf16+flush+compiled"] == 160.0  # the per-mode bounds are kept


def paced_spans(pacer, fail=None):
    """A paired member whose segment is one step of 50 ms sleep; it returns when each segment ran.
    fail: "raise" or "die" in its second segment."""
    spans = []
    message = pacer.boundary(0)
    while message == "go":
        if len(spans) == 1 and fail == "raise":
            raise ValueError("segment failed")
        if len(spans) == 1 and fail == "die":
            os._exit(3)
        t0 = time.monotonic()
        time.sleep(0.05)
        spans.append((t0, time.monotonic()))
        message = pacer.boundary(1)
    return spans


def test_alternate_runs_one_member_at_a_time_and_drops_the_warm_cycle():
    speeds, spans = alternate({"a": (paced_spans, ()), "b": (paced_spans, ())}, 3)
    assert {k: len(v) for k, v in speeds.items()} == {"a": 3, "b": 3}  # cycle 0 not kept
    # a segment's speed counts its own time only: a member idling through the other's turn would be under 10/s
    assert all(12 < v <= 20 for v in speeds["a"] + speeds["b"])
    every = sorted((start, end, name) for name, v in spans.items() for start, end in v)
    assert len(every) == 8 and all(end <= nxt for (_, end, _), (nxt, _, _) in zip(every, every[1:]))
    assert "".join(name for *_, name in every) == "abbaabba"  # the order reversed every other cycle


@pytest.mark.parametrize("fail, says", [("raise", "b: ValueError: segment failed"), ("die", "b: .*exit code 3")])
def test_alternate_names_a_member_that_fails_and_ends_the_others(fail, says):
    import multiprocessing as mp

    with pytest.raises(RuntimeError, match=says):
        alternate({"a": (paced_spans, ()), "b": (paced_spans, (fail,))}, 3)
    assert not mp.active_children()


def test_bound_modes_are_named_by_what_they_resolve_to_and_include_the_loops_own():
    def resolved(extra):
        return mode_name(pong_config(extra)[0])

    assert {name: resolved(extra) for name, extra in BARE_MODES.items()} == {name: name for name in BARE_MODES}
    # whatever `auto` picks on this CPU is one of the modes timed in fresh processes
    assert resolved(AUTO) in BARE_MODES


def test_the_paired_bound_is_the_faster_of_the_fresh_winner_and_the_loops_own_mode():
    fresh = {"bf16+flush+compiled": 253.0, "bf16+flush+compiled+reuse": 248.0, "float32": 130.0}
    own = "bf16+flush+compiled+reuse"
    assert bound_candidates(fresh, own, ["x"]) == {own: ["x"], "bf16+flush+compiled": BARE_MODES["bf16+flush+compiled"]}
    assert bound_candidates({**fresh, own: 260.0}, own, ["x"]) == {own: ["x"]}  # timed once when it won
    # over the paired cycles the mode without kept memory ran slower: the bound is the loop's own mode
    assert bound_of({"bf16+flush+compiled": [237, 222, 207, 196], own: [265, 252, 261, 220]}) == own


def test_own_update_fraction_pairs_the_loop_with_its_own_process_update():
    s = summarize({**SAMPLES, "own_update:ale_vector4": [160.0, 180.0, 150.0]}, "ale_vector4")
    assert s["own_update_fractions"] == pytest.approx([150 / 160, 171 / 180, 120 / 150])
    assert s["own_update_fraction"] == pytest.approx(150 / 160)
    assert s["fraction_of_limit"] == pytest.approx(0.95)  # the goal's figure is unchanged
    assert "own_update_fraction" not in summarize(SAMPLES, "ale_vector4")  # a run saved before it


def test_rows_forced_into_a_slow_mode_are_timed_over_fewer_steps():
    # bf16 without native bf16 (an AVX2 CPU): a tenth of the float32 bound
    avx2 = {"float32": 100.0, "float32+flush": 102.0, "bf16": 8.0, "bf16+flush": 8.5,
            "float32+flush+compiled": 110.0, "bf16+flush+compiled": 9.0}
    steps = {name: row_steps(4000, extra, avx2) for name, extra in SWITCHES.items()}
    assert {n for n, s in steps.items() if s < 4000} == {"bf16_autocast", "fast", "learner_thread", "env_workers",
                                                          "num_envs4"}
    assert steps["fast"] == 400 and steps["auto"] == steps["ale_vector4"] == steps["plain"] == 4000
    # with native bf16 every row keeps its steps
    amx = {**avx2, "bf16": 180.0, "bf16+flush": 190.0, "bf16+flush+compiled": 200.0}
    assert all(row_steps(4000, extra, amx) == 4000 for extra in SWITCHES.values())


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


def test_isolated_rows_return_raise_and_survive_a_dead_process():
    import os

    from benchmarks.throughput import isolated

    assert isolated(abs, -3) == 3  # computed in a spawned process
    with pytest.raises(RuntimeError, match="ValueError"):
        isolated(int, "not a number")
    with pytest.raises(RuntimeError, match="exit code 3"):  # no hang when the row's process dies
        isolated(os._exit, 3)


def test_report_finish_closes_the_machine_record_and_writes_into_a_new_folder(tmp_path, capsys):
    from benchmarks.report import finish
    from howsure import machine

    path = tmp_path / "new" / "run.json"
    assert finish({"x": 1, "machine": machine.describe()}, path) == 0
    saved = json.loads(path.read_text())
    assert saved == json.loads(capsys.readouterr().out)
    assert saved["x"] == 1 and "load_end" in saved["machine"] and "date_end" in saved["machine"]


@pytest.mark.parametrize("args, says", [(["--rounds", "0"], "--rounds: must be at least 1, got 0"),
                                        (["--steps", "abc"], "--steps: expected a whole number, got 'abc'")])
def test_counts_are_checked_before_anything_is_measured(args, says):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), *args],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].endswith(says)
    assert "Traceback" not in out.stderr
