"""benchmarks/ood.py: the OOD screen over several runs and agents, read back from its JSON and PNG."""

import json

import numpy as np
import pytest
from howsure.agents import make_agent

from benchmarks.ood import auroc, corrupt, main, parts, summarise
from howsure import envs, training, wiring


def short_run(tmp_path, preset: str, seed: int):
    cfg = wiring.load(preset, [f"seed={seed}", "total_steps=800", "agent.learning_starts_steps=300",
                               "eval.every_steps=0", "log.quiet=true", f"run_dir={tmp_path / f'{seed}_{preset}'}"])
    cfg, run_dir = training.prepare_run_dir(cfg, overwrite=True)
    training.train(cfg, run_dir)
    return run_dir


def test_screen_over_seeds_and_agents_writes_json_and_plot(tmp_path):
    runs = [short_run(tmp_path, "bayes_dqn_cartpole", 0), short_run(tmp_path, "bayes_dqn_cartpole", 1),
            short_run(tmp_path, "boot_dqn_cartpole", 0)]
    out, png = tmp_path / "ood.json", tmp_path / "ood.png"
    assert main([*map(str, runs), "--ood-env", "Acrobot-v1", "--observations", "300", "--labels", "a,a,b",
                 "--draws", "40", "--json", str(out), "--png", str(png)]) == 0
    result = json.loads(out.read_text())
    assert result["draws"] == 40
    bayes_row, boot_row = result["runs"][0], result["runs"][2]  # the preset has a dropout epinet: its share
    assert {"dropout_auroc", "epinet_auroc", "epinet_std_ood_median"} <= set(bayes_row)
    # and each dropout place's share: the preset drops out after the head's hidden layer only
    assert "dropout_hidden1_auroc" in bayes_row and "dropout_features_auroc" not in bayes_row
    assert "epinet_auroc" not in boot_row
    assert [(r["agent"], r["seed"]) for r in result["runs"]] == [("bayes_dqn", 0), ("bayes_dqn", 1), ("boot_dqn", 0)]
    assert all(0.0 <= r["auroc"] <= 1.0 and r["epistemic_std_ood_median"] > 0 for r in result["runs"])
    bayes = result["by_label"]["a"]
    assert bayes["runs"] == 2 and bayes["mean"] == round(float(np.mean(bayes["aurocs"])), 4)
    assert result["by_label"]["b"]["runs"] == 1
    assert "truncated from 6 to the first 4" in result["runs"][0]["observations"]
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    # the agent's own game, played by the agent, with noisy observations
    assert main([str(runs[0]), "--ood-env", "CartPole-v1", "--ood-policy", "agent", "--ood-noise", "0.5",
                 "--observations", "200", "--draws", "10", "--json", str(out)]) == 0
    noisy = json.loads(out.read_text())
    assert (noisy["ood_policy"], noisy["ood_noise"], noisy["ood_flicker"]) == ("agent (evaluation)", 0.5, 0.0)
    assert noisy["runs"][0]["observations"] == "same observation shape"


def test_corruption_by_hand_and_bad_options(capsys):
    rng = np.random.default_rng(0)
    screen = np.array([[0, 128, 255]], np.uint8)
    noisy = corrupt(screen, 1e9, rng)
    assert noisy.dtype == np.uint8 and set(noisy.ravel()) <= {0, 255}  # huge noise: clipped to the ends
    assert corrupt(screen, 0.0, rng) is screen
    vec = np.zeros((1000, 4), np.float32)
    assert abs(float(corrupt(vec, 2.0, rng).std()) - 2.0) < 0.05
    for bad in (["--ood-noise", "-1"], ["--ood-flicker", "1.5"], ["--ood-flicker", "0.5"]):  # Acrobot: no screens
        with pytest.raises(SystemExit) as stop:
            main(["some_run", "--ood-env", "Acrobot-v1", *bad])
        assert stop.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_summary_and_auroc_by_hand():
    rows = [{"label": "a", "auroc": 0.9}, {"label": "b", "auroc": 0.5}, {"label": "a", "auroc": 0.7}]
    assert summarise(rows)["a"] == {"runs": 2, "aurocs": [0.9, 0.7], "mean": 0.8, "std": 0.1, "min": 0.7}
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0


def test_parts_split_the_spread_by_dropout_place_and_epinet():
    cfg = wiring.load("configs/bayes_dqn_cartpole.yaml", ["agent.dropout_p=[0.2,0.0]", "seed=0"])
    env = envs.make_env(cfg.env)
    agent = make_agent(cfg, envs.spec_of(cfg.env.id, env))
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    shares = parts(agent, obs, draws=30)
    assert set(shares) == {"dropout_features", "dropout", "epinet"}
    # one dropout place: its share and the masks' share are the same draws of the same noise
    np.testing.assert_array_equal(shares["dropout_features"], shares["dropout"])
    assert all(v.shape == (50,) and (v > 0).all() for v in shares.values())
