"""Acceptance 4: on deep_sea N=10, the deep explorers solve within a budget in which epsilon-greedy
DQN does not (seed-fixed). Solved is bsuite's criterion: fewer than 90% bad episodes so far."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("bsuite")

from benchmarks.exploration import cell_config, run_cell, solve_episode  # noqa: E402
from howsure import agents  # noqa: E402

SIZE, SEED, BUDGET_EPISODES = 10, 0, 300  # 2^10 = 1024 episodes: what dithering needs


def solve(label: str) -> dict:
    cfg, good_above = cell_config(label, "deep_sea", SIZE, SEED, [])
    return run_cell(replace(cfg, total_steps=BUDGET_EPISODES * SIZE), BUDGET_EPISODES, good_above)


def test_bsuite_solve_criterion():
    assert solve_episode([False] * 9) is None
    assert solve_episode([False, False, True]) == 3  # 2 of 3 bad: below 90%
    assert solve_episode([False] * 9 + [True]) is None  # exactly 90% bad is not below
    assert solve_episode([False] * 9 + [True, True]) == 11


@pytest.mark.slow
def test_epsilon_greedy_dqn_does_not_solve_within_the_budget():
    row = solve("dqn")
    assert not row["solved"] and row["episodes"] == BUDGET_EPISODES


@pytest.mark.slow
def test_boot_dqn_solves_within_the_budget():
    row = solve("boot_dqn")
    assert row["solved"] and row["solve_episode"] <= BUDGET_EPISODES


@pytest.mark.slow
def test_bayes_dqn_solves_within_the_budget():
    if "bayes_dqn" not in agents.AGENTS:
        pytest.skip("bayes_dqn is not registered yet (agents/bayes_dqn.py)")
    row = solve("bayes_thompson_episode")
    assert row["solved"] and row["solve_episode"] <= BUDGET_EPISODES
