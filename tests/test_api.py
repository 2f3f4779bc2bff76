"""howsure from Python (howsure/api.py): train a config, load the agent, act with it on its own env."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from howsure.api import Policy, load, train
from howsure.errors import UserError

SHORT = ["total_steps=300", "agent.learning_starts_steps=100", "eval.every_steps=300", "eval.episodes=2",
         "eval.num_envs=2", "checkpoint_replay=false", "log.quiet=true", "eval.video_every_evals=0"]


def test_train_load_act_resume(tmp_path):
    run_dir, summary = train("configs/dqn_cartpole.yaml", [*SHORT, f"run_dir={tmp_path / 'run'}"])
    assert run_dir == tmp_path / "run" and (run_dir / "config.yaml").is_file()
    assert summary["step"] == 300 and not summary["interrupted"]
    assert json.loads((run_dir / "summary.json").read_text())["step"] == 300

    policy = load(run_dir)
    assert isinstance(policy, Policy) and policy.step == 300
    assert policy.obs_shape == (4,) and policy.n_actions == 2 and not policy.reports_uncertainty
    env = policy.make_env()
    obs, _ = env.reset(seed=0)
    with torch.no_grad():
        greedy = policy.agent.q(torch.as_tensor(np.stack([obs, -obs]))).argmax(1).numpy()
    action = policy.act(obs, epsilon=0.0)
    assert type(action) is int and action == greedy[0]
    assert policy.act(np.stack([obs, -obs]), epsilon=0.0).tolist() == greedy.tolist()
    # epsilon 1 acts at random: both actions show up over 200 draws
    assert set(policy.act(np.stack([obs] * 200), epsilon=1.0).tolist()) == {0, 1}
    # a whole episode on the env make_env built, with the config's evaluation epsilon (0 here)
    done, steps = False, 0
    while not done:
        obs, _, terminated, truncated, _ = env.step(policy.act(obs))
        done, steps = terminated or truncated, steps + 1
    env.close()
    assert steps >= 8  # CartPole cannot fall in fewer steps
    returns = policy.evaluate(episodes=3, seed=5)
    assert len(returns) == 3 and all(r >= 8 for r in returns)
    assert returns == load(run_dir).evaluate(episodes=3, seed=5)  # greedy and seeded: the same games

    _, resumed = train(resume=run_dir, overrides=["total_steps=400"])
    assert resumed["step"] == 400 and load(run_dir).step == 400


def test_bad_calls_raise_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="one of the two"):
        train("configs/dqn_cartpole.yaml", resume=tmp_path)
    with pytest.raises(UserError, match="agent.lrr"):
        train("configs/dqn_cartpole.yaml", ["agent.lrr=1", f"run_dir={tmp_path / 'r'}"])
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="no such run directory"):
        train(resume=tmp_path / "missing")
    with pytest.raises(UserError):
        load(tmp_path / "missing")

    run_dir, _ = train("configs/tabular_nchain.yaml", ["total_steps=200", f"run_dir={tmp_path / 'nchain'}",
                                                        "log.quiet=true"])
    policy = load(run_dir)
    obs, _ = policy.make_env().reset(seed=0)
    assert policy.act(obs) in (0, 1) and policy.act(np.array([0, 4])).shape == (2,)
    with pytest.raises(UserError, match=r"shape \(2, 2\)"):
        policy.act(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(UserError, match="between 0 and 1"):
        policy.act(obs, epsilon=1.5)
    with pytest.raises(UserError, match="no posterior"):
        policy.uncertainty(obs)


def test_uncertainty_of_a_bayes_agent(tmp_path):
    run_dir, _ = train("configs/bayes_dqn_cartpole.yaml", [*SHORT, f"run_dir={tmp_path / 'run'}"])
    policy = load(run_dir)
    assert policy.reports_uncertainty
    obs, _ = policy.make_env().reset(seed=0)
    mean, std = policy.uncertainty(obs, draws=64)
    assert mean.shape == (2,) and std.shape == (2,) and (std > 0).all()  # dropout draws differ
    means, stds = policy.uncertainty(np.stack([obs, obs, obs]), draws=64)
    assert means.shape == (3, 2) and stds.shape == (3, 2)
    # many draws settle on the posterior mean: two calls of 4,000 draws agree far more closely than
    # the draws differ from each other
    a, _ = policy.uncertainty(obs, draws=4000)
    b, _ = policy.uncertainty(obs, draws=4000)
    assert np.abs(a - b).max() < 0.2 * std.max()


def test_recurrent_state_is_kept_between_acts_and_cleared_by_reset(tmp_path):
    run_dir, _ = train("configs/drqn_cartpole_novel.yaml", [*SHORT, f"run_dir={tmp_path / 'run'}"])
    policy = load(run_dir)
    obs, _ = policy.make_env().reset(seed=0)
    memory = policy.agent.memory
    policy.act(obs)
    first = memory.get(1).clone()
    policy.act(obs)
    assert not torch.equal(memory.get(1), first)  # the LSTM moved on with the second observation
    policy.reset()
    assert torch.count_nonzero(memory.get(1)) == 0
    policy.act(obs)
    assert torch.allclose(memory.get(1), first)  # from a cleared state, the same step again
    policy.act(np.stack([obs, obs]))  # a batch of another size starts every row afresh
    assert torch.allclose(memory.get(2), first.expand(2, -1))


def test_hooks_watch_the_run_and_stop_it(tmp_path):
    from howsure.api import Hooks

    seen: dict[str, list] = {"evals": [], "episodes": []}

    def on_eval(step, mean):
        seen["evals"].append((step, mean))
        return step >= 400  # stop at the second evaluation

    hooks = Hooks(on_eval=on_eval, on_episode=lambda ep, step: seen["episodes"].append((ep, step)) and False)
    run_dir, summary = train("configs/dqn_cartpole.yaml", [*SHORT, "total_steps=2000", "eval.every_steps=200",
                                                           f"run_dir={tmp_path / 'run'}"], hooks=hooks)
    assert [s for s, _ in seen["evals"]] == [200, 400]
    assert summary["best_eval_return"] == max(mean for _, mean in seen["evals"])  # the means the loop logged
    assert summary["step"] == 400 and not summary["interrupted"] and (run_dir / "checkpoints" / "final.pt").is_file()
    assert len(seen["episodes"]) == summary["episodes"] and all(length >= 8 for (_, _, length), _ in seen["episodes"])
    with pytest.raises(UserError, match="distributed.actors=0"):
        train("configs/dqn_cartpole.yaml", [*SHORT, "distributed.actors=1", f"run_dir={tmp_path / 'ray'}"], hooks=hooks)
    assert not (tmp_path / "ray").exists()


def test_evaluate_repeats_its_games_as_evaluate_py_plays_them(tmp_path):
    from tests.conftest import run_in_process

    run_dir, _ = train("configs/dqn_cartpole.yaml", [*SHORT, f"run_dir={tmp_path / 'run'}"])
    policy = load(run_dir)
    first = policy.evaluate(episodes=3, seed=4, epsilon=0.5)  # half the actions random
    policy.act(np.zeros(4), epsilon=1.0)  # draws that move the agent's generator on
    assert policy.evaluate(episodes=3, seed=4, epsilon=0.5) == first
    out = tmp_path / "eval.json"
    res = run_in_process("evaluate.py", str(run_dir), "--episodes", "3", "--seed", "4", "--epsilon", "0.5",
                         "--json", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["returns"] == first


def test_bootstrapped_heads_give_a_spread_and_train_restores_threads(tmp_path):
    torch.set_num_threads(2)
    run_dir, _ = train("configs/boot_dqn_cartpole.yaml", [*SHORT, "torch_threads=1", f"run_dir={tmp_path / 'run'}"])
    assert torch.get_num_threads() == 2  # the run's torch_threads=1 held while it trained only
    policy = load(run_dir)
    obs, _ = policy.make_env().reset(seed=0)
    mean, std = policy.uncertainty(obs)
    assert mean.shape == (2,) and (std > 0).all()  # the heads disagree


@pytest.fixture(scope="module")
def nchain_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("api") / "nchain"
    train("configs/tabular_nchain.yaml", ["total_steps=200", f"run_dir={run_dir}", "log.quiet=true"])
    return run_dir


@pytest.mark.parametrize("call, needle", [
    (lambda p: p.act(-1), "whole numbers from 0 to 4"),
    (lambda p: p.act(2.5), "observation 2.5"),
    (lambda p: p.act([0, 5]), "observation 5"),
    (lambda p: p.act("a"), "<U1 values"),
    (lambda p: p.act([[0, 1], [2]]), "uneven shapes"),
    (lambda p: p.act(np.zeros((0,), dtype=np.int64)), "shape (0,)"),
    (lambda p: p.act(1, epsilon="a"), "a probability"),
    (lambda p: p.evaluate(2.5), "episodes=2.5"),
    (lambda p: p.evaluate(1, seed=-1), "seed=-1"),
    (lambda p: p.uncertainty(1, draws=0), "draws=0"),
    (lambda p: p.make_env(render_mode="rgb_array"), "cannot draw"),
])
def test_bad_policy_input_is_one_line(nchain_run, call, needle):
    run_dir = nchain_run
    with pytest.raises(UserError, match=re.escape(needle)):
        call(load(run_dir))
    with pytest.raises(UserError, match="a list of key=value strings"):
        load(run_dir, overrides="device=cpu")
