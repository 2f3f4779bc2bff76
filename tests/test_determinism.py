"""Seeding is one function (howsure.seeding.seed_everything), and equal seeds give equal runs."""

from howsure.logger import read_scalars
from tests.conftest import run_cli

ARGS = ["--config", "configs/dqn_cartpole.yaml", "total_steps=1500", "agent.learning_starts_steps=300",
        "log.every_steps=300", "eval.every_steps=750", "eval.episodes=3", "--quiet"]
TAGS = ("charts/episodic_return", "losses/td_loss", "values/q_mean", "eval/episodic_return")


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        res = run_cli("train.py", *ARGS, f"seed={seed}", f"run_dir={tmp_path / name}")
        assert res.returncode == 0, res.stderr
        runs[name] = read_scalars(tmp_path / name)
    for tag in TAGS:
        assert runs["a"][tag] == runs["b"][tag], tag
    assert runs["a"]["losses/td_loss"] != runs["c"]["losses/td_loss"]
