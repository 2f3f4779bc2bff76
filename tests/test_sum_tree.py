"""Sum tree and prioritized sampling (Schaul et al. 2016): totals, proportions, IS weights."""

from __future__ import annotations

import numpy as np
import pytest
from howsure.replay.prioritized import PrioritySampler, PrioritySettings
from howsure.replay.sum_tree import SumTree


def test_totals_and_min_follow_every_update():
    tree = SumTree(5)  # not a power of two: 8 leaves, 3 never used
    tree.set(np.arange(5), [1.0, 2.0, 3.0, 4.0, 5.0])  # vectorised path
    assert tree.total == 15.0 and tree.min == 1.0
    tree.set([0], [0.0])  # one-leaf path; zero leaves do not count as the minimum
    assert tree.total == 14.0 and tree.min == 2.0
    tree.set([4, 4, 1], [9.0, 7.0, 0.5])  # duplicates: the last value wins
    assert tree.total == pytest.approx(0.5 + 3 + 4 + 7) and tree.min == 0.5
    assert tree.get([0, 1, 4]).tolist() == [0.0, 0.5, 7.0]
    big = SumTree(1000)
    rng = np.random.default_rng(0)
    values = rng.random(1000)
    big.set(np.arange(1000), values)
    for _ in range(50):  # many small updates, then compare with a fresh sum: no drift
        idx = rng.integers(0, 1000, 3)
        values[idx] = rng.random(3)
        big.set(idx, values[idx])
    assert big.total == pytest.approx(values.sum(), rel=1e-12) and big.min == values.min()
    with pytest.raises(ValueError):
        big.set([1], [-1.0])


def test_find_returns_the_leaf_whose_interval_holds_the_target():
    tree = SumTree(4)
    tree.set(np.arange(4), [1.0, 0.0, 2.0, 3.0])
    got = tree.find(np.array([0.0, 0.99, 1.0, 2.5, 3.0, 5.99]))
    assert got.tolist() == [0, 0, 2, 2, 3, 3]  # the zero leaf 1 is never found


def test_sampling_is_proportional_to_priority():
    priorities = np.array([1.0, 2.0, 0.0, 3.0, 4.0, 10.0])
    tree = SumTree(len(priorities))
    tree.set(np.arange(len(priorities)), priorities)
    rng = np.random.default_rng(123)
    draws = np.concatenate([tree.sample(32, rng) for _ in range(2_000)])  # 64,000 draws
    freq = np.bincount(draws, minlength=len(priorities)) / len(draws)
    expected = priorities / priorities.sum()
    # binomial standard error is at most 0.002 here; 5 of them with a fixed seed
    assert np.abs(freq - expected).max() < 0.01
    assert freq[2] == 0.0


def test_importance_weights_equal_hand_computed_values():
    settings = PrioritySettings(alpha=0.5, beta_start=0.4, beta_anneal_steps=100, eps=0.0)
    sampler = PrioritySampler(4, settings)
    sampler.add_new(np.arange(4))  # max priority 1 at first
    sampler.update(np.arange(4), np.array([1.0, 4.0, 9.0, 16.0]))  # p = |td|^0.5 = 1, 2, 3, 4
    assert sampler.tree.total == pytest.approx(10.0) and sampler.max_priority == 16.0
    assert sampler.beta(0) == 0.4 and sampler.beta(50) == pytest.approx(0.7) and sampler.beta(500) == 1.0
    slots, weights = sampler.sample(64, np.random.default_rng(0), step=50)
    # w_i = (N P(i))^-beta / max_j (N P(j))^-beta = (p_i / p_min)^-beta, beta = 0.7 at step 50
    hand = {0: 1.0, 1: 2.0 ** -0.7, 2: 3.0 ** -0.7, 3: 4.0 ** -0.7}
    assert set(slots.tolist()) == {0, 1, 2, 3}
    for slot, w in zip(slots.tolist(), weights.tolist()):
        assert w == pytest.approx(hand[slot], rel=1e-6)
    sampler.add_new(np.array([0]))  # a new transition gets the largest priority seen: 16^0.5
    assert sampler.tree.get([0])[0] == pytest.approx(4.0)
    sampler.remove(np.array([3]))  # overwritten slots are never drawn again
    assert 3 not in sampler.sample(256, np.random.default_rng(1), step=0)[0]
