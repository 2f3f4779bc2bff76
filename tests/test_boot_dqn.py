"""Bootstrapped DQN: heads, bootstrap masks, randomized prior, one head per episode."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from gymnasium import spaces
from howsure.agents.boot_dqn import BootDQNAgent, bootstrap_masks
from howsure.envs.make import EnvSpec
from howsure.replay.batch import Batch

from howsure import agents
from howsure.wiring import load

SPEC = EnvSpec("test", spaces.Box(0.0, 1.0, (6,), np.float32), 3)


def make(*overrides: str, seed: int = 0) -> BootDQNAgent:
    torch.manual_seed(seed)
    cfg = load(None, ["agent.name=boot_dqn", "agent.num_heads=4", "encoder.name=mlp",
                      "encoder.mlp.hidden_sizes=[16]", *overrides])
    return agents.make_agent(cfg, SPEC)


def batch(n: int = 32, seed: int = 0, indices=None) -> Batch:
    rng = np.random.default_rng(seed)
    obs = rng.random((n, 6), dtype=np.float32)
    return Batch(torch.from_numpy(obs), torch.from_numpy(rng.integers(0, 3, n)),
                 torch.from_numpy(rng.random(n, dtype=np.float32)), torch.from_numpy(obs[::-1].copy()),
                 torch.full((n,), 0.99), indices=np.arange(n) if indices is None else np.asarray(indices))


def test_masks_are_a_fixed_bernoulli_function_of_slot_and_seed():
    slots = np.arange(20_000)
    m = bootstrap_masks(slots, 10, 0.5, seed=7)
    assert m.shape == (20_000, 10) and set(np.unique(m)) == {0.0, 1.0}
    np.testing.assert_array_equal(m[[5, 17, 5]], bootstrap_masks(np.array([5, 17, 5]), 10, 0.5, seed=7))
    assert abs(m.mean() - 0.5) < 0.01  # Bernoulli(p)
    assert abs(bootstrap_masks(slots, 10, 0.2, seed=7).mean() - 0.2) < 0.01
    corr = np.corrcoef(m.T)[np.triu_indices(10, 1)]
    assert np.abs(corr).max() < 0.05  # heads draw independently
    assert (m != bootstrap_masks(slots, 10, 0.5, seed=8)).mean() > 0.4  # another agent, other masks
    assert bootstrap_masks(slots[:100], 3, 1.0, seed=0).min() == 1.0  # p = 1: no bootstrap


def test_heads_disagree_and_each_env_follows_its_own_head_for_the_whole_episode():
    agent = make()
    obs = np.random.default_rng(1).random((2, 6), dtype=np.float32)
    with torch.no_grad():
        q = agent.q(torch.from_numpy(obs))
    assert q.shape == (2, 4, 3)
    assert (q.std(dim=1) > 1e-3).all()  # random init + prior: the heads disagree
    agent.begin_episode(np.arange(2))
    heads = agent.active.copy()
    for _ in range(5):  # no new episode: the same heads
        actions = agent.act(obs, step=10_000)
        np.testing.assert_array_equal(agent.active, heads)
        np.testing.assert_array_equal(actions, q[torch.arange(2), torch.as_tensor(heads)].argmax(1).numpy())
    drawn = set()
    for _ in range(40):
        agent.begin_episode(np.array([1]))
        assert agent.active[0] == heads[0]  # env 0's episode goes on
        drawn.add(int(agent.active[1]))
    assert drawn == {0, 1, 2, 3}
    np.testing.assert_array_equal(agent.act(obs, step=0, epsilon=0.0), q.mean(dim=1).argmax(1).numpy())
    assert agent.act_metrics()["uncertainty/epistemic_std"] > 0


def test_prior_is_fixed_scaled_and_added():
    agent = make("agent.prior_scale=2.5")
    obs = torch.rand(5, 6)
    prior_before = {k: v.clone() for k, v in agent.q.prior.state_dict().items()}
    assert not any(p.requires_grad for p in agent.q.prior.parameters())
    with torch.no_grad():
        expected = agent.q.trained(obs) + 2.5 * agent.q.prior(obs)
        torch.testing.assert_close(agent.q(obs), expected)
    for i in range(5):
        agent.update(batch(seed=i))
    for k, v in agent.q.prior.state_dict().items():
        torch.testing.assert_close(v, prior_before[k])  # learning never moves the prior
    assert make("agent.prior_scale=0").q.prior is None


def test_loss_is_dqn_td_loss_masked_per_head():
    agent = make("agent.loss=mse", "agent.mask_prob=0.5")
    b = batch()
    with torch.no_grad():
        q_taken = agent.q(b.obs)[torch.arange(32), :, b.actions]  # (B, K)
        target = b.rewards[:, None] + b.discounts[:, None] * agent.target(b.next_obs).max(dim=2).values
    masks = torch.from_numpy(bootstrap_masks(b.indices, 4, 0.5, agent.mask_seed))
    expected = (0.5 * (target - q_taken) ** 2 * masks).mean()
    assert agent.update(b)["losses/td_loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_a_head_learns_nothing_from_transitions_its_mask_drops():
    agent = make("agent.shared_encoder=false", "agent.max_grad_norm=0")
    slots = np.arange(5_000)
    dropped_by_0 = slots[bootstrap_masks(slots, 4, 0.5, agent.mask_seed)[:, 0] == 0][:32]
    head0 = [p.detach().clone() for p in agent.q.trained.heads[0].parameters()]
    enc0 = [p.detach().clone() for p in agent.q.trained.encoders[0].parameters()]
    head1 = [p.detach().clone() for p in agent.q.trained.heads[1].parameters()]
    agent.update(batch(indices=dropped_by_0))
    for before, p in zip(head0 + enc0, list(agent.q.trained.heads[0].parameters())
                         + list(agent.q.trained.encoders[0].parameters())):
        torch.testing.assert_close(p.detach(), before)
    assert any(not torch.equal(b, p.detach()) for b, p in zip(head1, agent.q.trained.heads[1].parameters()))


def test_state_dict_round_trips_through_a_safe_checkpoint():
    agent = make()
    agent.begin_episode(np.arange(3))
    agent.update(batch())
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    other = make(seed=5)
    other.load_state_dict(torch.load(buf, weights_only=True))
    obs = torch.rand(4, 6)
    with torch.no_grad():
        torch.testing.assert_close(other.q(obs), agent.q(obs))
    assert other.mask_seed == agent.mask_seed and other.active.tolist() == agent.active.tolist()
