"""bayes_dqn: Thompson draws, held episode masks, UCB, evaluation modes, checkpoints, encoders,
and the CartPole learning test (acceptance: evaluated mean >= 475 within 100,000 steps)."""

import io
import json

import numpy as np
import pytest
import torch
from gymnasium import spaces
from howsure.agents import make_agent
from howsure.envs.make import EnvSpec
from howsure.replay.batch import Batch

from howsure import envs, wiring
from howsure.errors import UserError
from howsure.logger import read_scalars

CARTPOLE = EnvSpec("CartPole-v1", spaces.Box(-np.inf, np.inf, (4,), np.float32), 2)


def agent_for(*overrides, spec=CARTPOLE, seed=0):
    torch.manual_seed(seed)
    cfg = wiring.load(None, ["agent.name=bayes_dqn", "encoder.name=mlp", "encoder.mlp.hidden_sizes=[32]",
                             "agent.head_hidden_sizes=[32]", *overrides])
    return make_agent(cfg, spec)


def observations(n=64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def test_thompson_draws_differ_and_their_mean_converges():
    # dropout only before the output layer: E_mask[Q] is exactly the dropout-off network's Q
    agent = agent_for("agent.dropout_p=[0,0.3]")
    obs = torch.as_tensor(observations(8))
    with torch.no_grad():
        feats = agent.q.features(obs)
        one, two = agent.q.draws(feats, 1)[0], agent.q.draws(feats, 1)[0]
        assert not torch.allclose(one, two)
        draws = agent.q.draws(feats, 5_000)
        off = agent.q.q_values(feats, None)
    err = (draws.mean(0) - off).abs()
    bound = 4 * draws.std(0) / np.sqrt(5_000) + 1e-6
    assert (err <= bound).all()
    assert draws.std(0).min() > 0  # dropout on while acting: every Q is uncertain


def uncertain_obs(agent, n_candidates=256):
    """An observation on which Thompson draws disagree about the best action."""
    obs = observations(n_candidates, seed=3)
    with torch.no_grad():
        best = agent.q.draws(agent.q.features(torch.as_tensor(obs)), 200).argmax(2).float().mean(0)
    i = int(torch.argmin((best - 0.5).abs()))
    assert 0.2 < best[i] < 0.8, "test setup: no observation with disputed greedy action"
    return obs[i : i + 1]


def test_thompson_changes_mask_every_step_but_episode_mode_holds_it():
    agent = agent_for("agent.dropout_p=[0.5,0.5]", "agent.exploration=thompson")
    obs = uncertain_obs(agent)
    per_step = {int(agent.act(obs, 0)[0]) for _ in range(60)}
    assert per_step == {0, 1}

    agent = agent_for("agent.dropout_p=[0.5,0.5]", "agent.exploration=thompson_episode")
    obs = uncertain_obs(agent)
    seen_per_episode = []
    for _ in range(30):
        agent.begin_episode(np.array([0]))
        held = {k: v.clone() for k, v in agent._episode_noise.items()}
        seen_per_episode.append({int(agent.act(obs, 0)[0]) for _ in range(20)})
        assert all(torch.equal(held[k], agent._episode_noise[k]) for k in held)
    assert all(len(s) == 1 for s in seen_per_episode)  # one mask: one greedy action all episode
    assert {next(iter(s)) for s in seen_per_episode} == {0, 1}  # a new mask for each episode


def test_begin_episode_redraws_only_the_named_envs():
    agent = agent_for("agent.exploration=thompson_episode")
    agent.act(observations(3), 0)
    before = {k: v.clone() for k, v in agent._episode_noise.items()}
    agent.begin_episode(np.array([1]))
    for k, v in agent._episode_noise.items():
        assert torch.equal(v[[0, 2]], before[k][[0, 2]]) and not torch.equal(v[1], before[k][1])


def test_ucb_with_zero_kappa_and_evaluation_act_on_the_mean():
    agent = agent_for("agent.exploration=ucb", "agent.ucb_kappa=0", "agent.n_draws=4000",
                      "agent.dropout_p=[0,0.3]")
    obs = observations(32)
    with torch.no_grad():
        off = agent.q(torch.as_tensor(obs)).numpy()
    clear = np.abs(off[:, 0] - off[:, 1]) > 0.05  # where the mean's argmax is not a coin flip
    assert clear.sum() > 5
    assert (agent.act(obs, 0)[clear] == off.argmax(1)[clear]).all()
    assert (agent.act(obs, 0, epsilon=0.0)[clear] == off.argmax(1)[clear]).all()
    std = agent.last_epistemic_std()
    assert std.shape == (32,) and (std > 0).all()
    metrics = agent.act_metrics()
    assert metrics["uncertainty/epistemic_std"] > 0  # the training act; evaluations log their own
    assert "uncertainty/eval_epistemic_std" not in metrics
    assert agent.act_metrics() == {}  # reset after each read

    deterministic = agent_for("agent.eval_dropout=false")
    a1 = deterministic.act(obs, 0, epsilon=0.0)
    assert all((deterministic.act(obs, 0, epsilon=0.0) == a1).all() for _ in range(5))


def batch_of(obs, seed=0, data_size=0):
    g = torch.Generator().manual_seed(seed)
    n = len(obs)
    return Batch(torch.as_tensor(obs), torch.randint(0, 2, (n,), generator=g), torch.rand(n, generator=g),
                 torch.as_tensor(obs) + 0.1, torch.full((n,), 0.99), data_size=data_size)


def test_update_learns_rates_logs_them_and_checkpoints_round_trip():
    agent = agent_for("agent.lr=0.01", "agent.prior_scale=1.0")
    p0 = agent.q.rates()
    for i in range(20):
        metrics = agent.update(batch_of(observations(32, seed=i), data_size=500))
    assert set(p0) == {"features", "hidden1"}
    for name in p0:
        assert f"uncertainty/dropout_p/{name}" in metrics
        assert metrics[f"uncertainty/dropout_p/{name}"] != p0[name]  # learned
    assert metrics["losses/dropout_reg"] < 0 and metrics["losses/weight_reg"] > 0
    prior_before = [t.clone() for t in agent.q.prior_head.parameters()]
    agent.update(batch_of(observations(32)))
    assert all(torch.equal(a, b) for a, b in zip(prior_before, agent.q.prior_head.parameters()))

    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    clone = agent_for("agent.lr=0.01", "agent.prior_scale=1.0", seed=5)
    clone.load_state_dict(torch.load(buf, weights_only=True))
    assert clone.q.rates() == agent.q.rates()  # N is the replay's size, saved with the replay
    obs = torch.as_tensor(observations(4))
    assert torch.allclose(clone.q(obs), agent.q(obs))


def test_bad_config_names_the_key():
    with pytest.raises(UserError, match="dropout_p"):
        agent_for("agent.dropout_p=[0.1]")
    with pytest.raises(UserError, match="n_draws"):
        agent_for("agent.n_draws=1")


def test_composes_with_the_nature_cnn_and_annotates_frames():
    from howsure.evaluation import frame_annotator

    spec = EnvSpec("ALE/Pong-v5", spaces.Box(0, 255, (4, 84, 84), np.uint8), 6)
    cfg = wiring.load(None, ["agent.name=bayes_dqn", "encoder.name=nature_cnn", "agent.n_draws=3"])
    agent = make_agent(cfg, spec)
    obs = np.random.default_rng(0).integers(0, 255, (2, 4, 84, 84), dtype=np.uint8)
    assert agent.act(obs, 0).shape == (2,)
    metrics = agent.update(Batch(torch.as_tensor(obs), torch.tensor([0, 5]), torch.zeros(2),
                                 torch.as_tensor(obs), torch.ones(2)))
    assert np.isfinite(metrics["losses/td_loss"])
    frame = np.zeros((210, 160, 3), np.uint8)
    drawn = frame_annotator(agent)(frame)  # the uncertainty bar
    assert drawn.shape == frame.shape and drawn.any()


@pytest.mark.slow
def test_bayes_dqn_learns_cartpole(tmp_path, cli):
    run = tmp_path / "run"
    # seed 2 reaches 475 at 20,000 steps (seeds 0-4: 20k-55k, docs/bayes_dqn.md); any seed that
    # learns shows the agent works, and this one keeps the suite short
    res = cli("train.py", "--config", "configs/bayes_dqn_cartpole.yaml", "--quiet", f"run_dir={run}",
              "torch_threads=1", "seed=2", "eval.video_every_evals=0")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_eval_return"] >= 475 and summary["step"] <= 100_000
    tags = read_scalars(run)
    for tag in ("uncertainty/epistemic_std", "uncertainty/eval_epistemic_std", "losses/epinet_loss",
                "uncertainty/dropout_p/hidden1"):
        assert tag in tags and len(tags[tag]) > 0
    assert "uncertainty/dropout_p/features" not in tags  # the preset drops out at the head only
    assert all(v > 0 for _, v in tags["uncertainty/epistemic_std"][1:])


def test_ood_auroc_hand_values():
    from benchmarks.ood import auroc

    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0  # every OOD score higher
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5  # ties count one half
    # pairs (out, in): (2,1) win, (2,3) loss, (4,1) win, (4,3) win -> 3/4
    assert auroc(np.array([1.0, 3.0]), np.array([2.0, 4.0])) == 0.75


def test_evaluation_inside_training_keeps_the_training_masks():
    cfg = wiring.load("configs/bayes_dqn_cartpole.yaml", ["agent.exploration=thompson_episode"])
    env = envs.make_env(cfg.env)
    agent = make_agent(cfg, envs.spec_of(cfg.env.id, env))
    agent.begin_episode(np.arange(2))
    before = {k: v.clone() for k, v in agent._episode_noise.items()}
    with agent.evaluating():
        agent.begin_episode(np.arange(4))
        changed = any(not torch.equal(before[k], agent._episode_noise[k][:2]) for k in before)
    assert changed  # evaluation drew masks of its own...
    assert all(torch.equal(before[k], agent._episode_noise[k]) for k in before)  # ...and gave training's back


def test_fixed_mask_pool_draws_from_its_members_and_survives_a_checkpoint():
    cfg = wiring.load("configs/bayes_dqn_cartpole.yaml", ["agent.n_masks=3", "seed=1"])
    env = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, env)
    agent = make_agent(cfg, spec)
    noise = agent.q.draw_noise(64)
    for name, rows in noise.items():
        pool = getattr(agent.q, f"pool_{name}")
        assert pool.shape[0] == 3
        members = {tuple(r.tolist()) for r in pool}
        assert {tuple(r.tolist()) for r in rows} <= members and len({tuple(r.tolist()) for r in rows}) > 1
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    other = make_agent(wiring.load("configs/bayes_dqn_cartpole.yaml", ["agent.n_masks=3", "seed=2"]), spec)
    name = next(iter(noise))
    assert not torch.equal(getattr(other.q, f"pool_{name}"), getattr(agent.q, f"pool_{name}"))
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(getattr(other.q, f"pool_{name}"), getattr(agent.q, f"pool_{name}"))
    with pytest.raises(UserError, match="n_masks=1"):
        make_agent(wiring.load("configs/bayes_dqn_cartpole.yaml", ["agent.n_masks=1"]), spec)


def test_fixed_masks_are_each_drawn_once_for_the_spread():
    agent = agent_for("agent.n_masks=4", "agent.n_draws=10")
    obs = torch.as_tensor(observations(8))
    feats = agent.q.features(obs)
    with torch.no_grad():
        a, b = agent.q.draws(feats, 10), agent.q.draws(feats, 10)
        assert a.shape == (4, 8, 2) and torch.equal(a, b)  # every member once, in order: no sampling noise
        member = agent.q.q_values(feats, agent.q.mask_noise(torch.full((8,), 2)))
        assert torch.allclose(a[2], member)
    agent.act(observations(8), 0)
    mean, std = agent.q_spread(observations(8))
    assert mean.shape == std.shape == (8, 2) and (std > 0).all()


def test_mask_bootstrap_trains_each_mask_on_its_own_slots():
    from howsure.agents.bootstrap import bootstrap_masks

    agent = agent_for("agent.n_masks=4", "agent.mask_bootstrap=0.5", seed=3)
    slots = np.arange(200)
    batch = Batch(torch.as_tensor(observations(200)), torch.zeros(200, dtype=torch.int64), torch.zeros(200),
                  torch.as_tensor(observations(200, seed=1)), torch.full((200,), 0.99), indices=slots)
    noise, rows_kept = agent.training_noise(batch)
    allowed = bootstrap_masks(slots, 4, 0.5, agent.mask_seed)
    name = next(iter(noise))
    pool = getattr(agent.q, f"pool_{name}")
    picked = [int(torch.nonzero((pool == row).all(1))[0]) for row in noise[name]]
    kept = allowed.max(1) == 1  # a slot no mask keeps (1 in 16 here) is trained with weight 0
    assert 0 < (~kept).sum() < 30
    assert all(allowed[i, k] == 1 for i, k in enumerate(picked) if kept[i])  # a mask whose bootstrap keeps the slot
    assert len(set(picked)) == 4
    np.testing.assert_array_equal(rows_kept, allowed.max(1))
    assert np.isfinite(agent.update(batch)["losses/td_loss"])
    with pytest.raises(UserError, match="mask_bootstrap=0.5 needs fixed masks"):
        agent_for("agent.mask_bootstrap=0.5")
    with pytest.raises(UserError, match="'agent.mask_bootstrap' must be in"):
        agent_for("agent.n_masks=4", "agent.mask_bootstrap=0")


def test_mask_training_all_trains_every_mask_on_every_kept_row():
    from howsure.agents.bootstrap import bootstrap_masks

    agent = agent_for("agent.n_masks=3", "agent.mask_bootstrap=0.5", "agent.mask_training=all", "agent.loss=mse",
                      "agent.concrete=false", "agent.double_dqn=false", "agent.prior_scale=2", seed=1)
    b, slots = 40, np.arange(40)
    batch = Batch(torch.as_tensor(observations(b)), torch.as_tensor(np.arange(b) % 2), torch.ones(b),
                  torch.as_tensor(observations(b, seed=1)), torch.full((b,), 0.9), indices=slots)
    allowed = bootstrap_masks(slots, 3, 0.5, agent.mask_seed)  # (B, K)
    noise, weights = agent.training_noise(batch)
    assert len(weights) == 3 * b and next(iter(noise.values())).shape[0] == 3 * b
    np.testing.assert_array_equal(weights, allowed.T.reshape(-1))  # mask-major: mask 0's rows first
    expected = 0.0
    with torch.no_grad():  # by hand: each mask's squared TD error on the rows its bootstrap keeps
        for k in range(3):
            mask = agent.q.mask_noise(torch.full((b,), k))
            q = agent.q(batch.obs, mask).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
            target = batch.rewards + batch.discounts * agent.target(batch.next_obs, mask).max(1).values
            expected += float((0.5 * (target - q) ** 2 * torch.as_tensor(allowed[:, k])).sum())
    assert agent.update(batch)["losses/td_loss"] == pytest.approx(expected / (3 * b), rel=1e-5)
    with pytest.raises(UserError, match="mask_training=all trains every fixed mask"):
        agent_for("agent.mask_training=all")


def test_epinet_head_and_index_by_hand():
    from howsure.agents.bayes_network import Epinet, epinet_index

    assert epinet_index(torch.tensor([0.1, 0.49, 0.5, 0.9])).tolist() == [-1.0, -1.0, 1.0, 1.0]
    net = Epinet(2, 2, 2, 2)  # 2 inputs, 2 hidden units, 2 actions, index of length 2
    with torch.no_grad():
        net.hidden.weight.copy_(torch.eye(2))
        net.hidden.bias.zero_()
        net.out.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 3.0]]))
        net.out.bias.zero_()
    x = torch.tensor([[1.0, -1.0], [1.0, 2.0]])
    z = torch.tensor([[-1.0, 1.0], [1.0, -1.0]])
    # h = relu(x) = [1, 0], [1, 2]; G = [[h1, h2], [2 h1, 3 h2]] = [[1, 0], [2, 0]], [[1, 2], [2, 6]]
    assert net(x, z).tolist() == [[-1.0, -2.0], [-1.0, -4.0]]


def test_epinet_adds_a_zero_mean_spread_that_training_removes_on_seen_states_only():
    agent = agent_for("agent.epinet_hidden=16", "agent.epinet_prior_scale=2", "agent.concrete=false",
                      "agent.dropout_p=[0.1,0.1]", seed=4)
    net = agent.q
    seen = torch.as_tensor(observations(32, seed=5)) * 0.3
    unseen = seen + 4.0

    def epinet_spread(obs):
        """Std over 400 indices of Q with the base dropout masks held (keep every unit)."""
        with torch.no_grad():
            feats = net.features(obs).repeat(400)
            noise = {k: torch.zeros_like(v) for k, v in net.draw_noise(len(obs) * 400).items()}
            noise["epinet"] = torch.rand(len(obs) * 400, 8)
            return net.q_values(feats, noise).view(400, len(obs), -1).std(0).mean().item()

    with torch.no_grad():  # the mean over an index and its negation is the base network's Q
        feats = net.features(seen)
        noise = net.draw_noise(len(seen))
        flipped = {**noise, "epinet": 1.0 - noise["epinet"]}
        both = (net.q_values(feats, noise) + net.q_values(feats, flipped)) / 2
        assert torch.allclose(both, net._run(net.head, feats.feat, net.masks(noise), len(seen)), atol=1e-5)
        assert not torch.allclose(net.q_values(feats, noise), both, atol=1e-3)
    before_seen, before_unseen = epinet_spread(seen), epinet_spread(unseen)
    prior = {k: v.clone() for k, v in net.state_dict().items() if "epinet_prior" in k}
    encoder = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(300):  # learn a target of 0 for the index-dependent part on the seen states
        noise = net.draw_noise(len(seen))
        flipped = {**noise, "epinet": 1.0 - noise["epinet"]}
        feats = net.features(seen)
        loss = ((net.q_values(feats, noise) - net.q_values(feats, flipped)) / 2).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after_seen, after_unseen = epinet_spread(seen), epinet_spread(unseen)
    assert after_seen < 0.25 * before_seen  # cancelled where it trained...
    # ...much less off the data (measured: 0.71 -> 0.11 seen, 4.2 -> 2.0 unseen; the ratio 5.9 -> 19)
    assert after_unseen / after_seen > 2 * before_unseen / before_seen
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in prior.items())  # the prior stays frozen
    assert all(torch.equal(v, net.encoder.state_dict()[k]) for k, v in encoder.items())
    with pytest.raises(UserError, match="'agent.epinet_hidden'"):
        agent_for("agent.epinet_hidden=-1")


def test_epinet_index_enters_td_targets_only_when_asked():
    batch = Batch(torch.as_tensor(observations(16)), torch.zeros(16, dtype=torch.int64), torch.ones(16),
                  torch.as_tensor(observations(16, seed=1)), torch.full((16,), 0.99))
    for mode in ("mean", "index"):
        agent = agent_for("agent.epinet_hidden=8", "agent.epinet_prior_scale=5", f"agent.epinet_target={mode}")
        noise = agent.q.draw_noise(16)
        flipped = {**noise, "epinet": 1.0 - noise["epinet"]}
        with torch.no_grad():
            targets = [agent.target(batch.next_obs, agent.target_noise(n)) for n in (noise, flipped)]
        assert ("epinet" in agent.target_noise(noise)) == (mode == "index")
        assert torch.equal(targets[0], targets[1]) == (mode == "mean")
    with pytest.raises(UserError, match="epinet_target"):
        agent_for("agent.epinet_target=sometimes")


def test_q_spread_takes_as_many_draws_as_asked():
    agent = agent_for("agent.n_draws=3")
    obs = observations(16)
    few = [agent.q_spread(obs, 2)[1] for _ in range(2)]
    many = [agent.q_spread(obs, 4000)[1] for _ in range(2)]
    assert not np.allclose(few[0], few[1], rtol=0.05)  # 2 draws: a noisy estimate of the spread
    np.testing.assert_allclose(many[0], many[1], rtol=0.1)  # 4000: the same spread twice


def test_thompson_epinet_holds_an_index_on_the_dropout_off_network():
    from howsure.agents.bayes_network import EPINET, Features

    agent = agent_for("agent.epinet_hidden=16", "agent.epinet_prior_scale=20", "agent.exploration=thompson_epinet")
    obs = observations(4)
    obs_t = torch.as_tensor(obs)
    chosen = []
    for _ in range(12):
        agent.begin_episode(np.arange(4))
        index = agent._episode_noise[EPINET][:4].clone()
        actions = {tuple(agent.act(obs, 0)) for _ in range(5)}
        assert len(actions) == 1  # the index is held for the episode
        with torch.no_grad():  # greedy on: dropout off (no base noise) + the held epinet index
            q = agent.q.q_values(agent.q.features(obs_t), {EPINET: index})
            base = agent.q.q_values(agent.q.features(obs_t), None)
        assert tuple(q.argmax(1).tolist()) == actions.pop()
        assert isinstance(agent.q.features(obs_t), Features) and not torch.allclose(q, base)
        chosen.append(tuple(q.argmax(1).tolist()))
    assert len(set(chosen)) > 1  # a new index per episode changes what the agent does
    with pytest.raises(UserError, match="thompson_epinet acts on the epinet"):
        agent_for("agent.exploration=thompson_epinet")


def test_epinet_mean_target_trains_the_index_part_towards_zero_apart_from_the_td_loss():
    from howsure.agents.dqn import td_target

    agent = agent_for("agent.epinet_hidden=8", "agent.epinet_prior_scale=1000", "agent.double_dqn=false",
                      "agent.dropout_p=[0.1,0.1]", "agent.concrete=false")
    batch = Batch(torch.as_tensor(observations(16)), torch.ones(16, dtype=torch.int64), torch.ones(16),
                  torch.as_tensor(observations(16, seed=1)), torch.full((16,), 0.99))
    torch.manual_seed(3)
    noise = agent.q.draw_noise(16)
    torch.manual_seed(3)
    with torch.no_grad():  # by hand, with the noise update() will draw
        feats = agent.q.features(batch.obs)
        base = agent.q.q_values(feats, {k: v for k, v in noise.items() if k != "epinet"})[:, 1]
        index_part = agent.q.epinet_term(feats, noise)[:, 1]
        target = td_target(batch.rewards, batch.discounts, agent.target(batch.next_obs, agent.target_noise(noise)))
    metrics = agent.update(batch)
    # a prior 1000x larger than Q: the TD loss still sees the base alone, the index part its own loss
    assert abs(index_part).mean() > 50
    assert metrics["losses/td_loss"] == pytest.approx(torch.nn.functional.smooth_l1_loss(base, target).item(), rel=1e-5)
    assert metrics["losses/epinet_loss"] == pytest.approx(0.5 * index_part.pow(2).mean().item(), rel=1e-5)


def act_beside_its_draws(agent, obs, seed, **act_kwargs):
    """agent.act(obs) and, drawn with the same noise, its 6 draws split into (base, epinet index part)."""
    feats = agent.q.features(torch.as_tensor(obs))
    torch.manual_seed(seed)
    with torch.no_grad():
        base, index_part = agent.q.draws(feats, 6, split=True)
    torch.manual_seed(seed)
    return agent.act(obs, 0, **act_kwargs), base, index_part, feats


def test_epinet_out_of_acting_still_counts_in_the_reported_spread():
    agent = agent_for("agent.epinet_hidden=8", "agent.epinet_prior_scale=1000", "agent.epinet_in_acting=false",
                      "agent.exploration=thompson_episode", "agent.n_draws=6")
    obs = observations(32)
    # evaluation: the mean over the same 6 draws
    actions, base, index_part, feats = act_beside_its_draws(agent, obs, 7, epsilon=0.0)
    np.testing.assert_array_equal(actions, base.mean(0).argmax(1).numpy())  # the index does not act...
    assert (actions != (base + index_part).mean(0).argmax(1).numpy()).any()  # (it would have here)
    full = (base + index_part).gather(2, torch.as_tensor(actions).view(1, -1, 1).expand(6, -1, 1)).squeeze(2)
    np.testing.assert_allclose(agent.last_epistemic_std(), full.std(0, unbiased=False).numpy(), rtol=1e-5)
    assert agent.last_epistemic_std().mean() > 10 * base.std(0).mean()  # ...but is in the spread
    agent.begin_episode(np.arange(32))
    held = agent._episode_noise
    with torch.no_grad():
        no_index = agent.q.q_values(feats, {k: v[:32] for k, v in held.items() if k != "epinet"})
    np.testing.assert_array_equal(agent.act(obs, 0), no_index.argmax(1).numpy())  # training: held masks only


def test_ucb_bonus_counts_the_epinet_even_when_it_does_not_act():
    agent = agent_for("agent.epinet_hidden=8", "agent.epinet_prior_scale=30", "agent.epinet_in_acting=false",
                      "agent.exploration=ucb", "agent.ucb_kappa=0.5", "agent.n_draws=6")
    actions, base, index_part, _ = act_beside_its_draws(agent, observations(64), 11)
    expected = base.mean(0) + 0.5 * (base + index_part).std(0, unbiased=False)
    np.testing.assert_array_equal(actions, expected.argmax(1).numpy())
    assert (actions != (base.mean(0) + 0.5 * base.std(0, unbiased=False)).argmax(1).numpy()).any()


def test_evaluation_uncertainty_is_logged_at_every_evaluation(tmp_path):
    from howsure.cli import train

    run = tmp_path / "run"
    assert train.main(["--config", "configs/bayes_dqn_cartpole.yaml", "total_steps=600", "eval.every_steps=200",
                       "eval.episodes=2", "eval.num_envs=2", "log.every_steps=500", "agent.learning_starts_steps=100",
                       "eval.video_every_evals=0", "checkpoint_replay=false", f"run_dir={run}", "--quiet"]) == 0
    tags = read_scalars(run)
    assert [s for s, _ in tags["uncertainty/eval_epistemic_std"]] == [200, 400, 600]  # with its evaluation
    assert all(v > 0 for _, v in tags["uncertainty/eval_epistemic_std"])
    assert [s for s, _ in tags["uncertainty/epistemic_std"]] == [500]  # training acts, at the log steps
