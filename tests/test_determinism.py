"""Seeding is one function (howsure.seeding.seed_everything), and equal seeds give equal runs."""

from howsure.logger import read_scalars
from tests.conftest import train_in_process

ARGS = ["--config", "configs/dqn_cartpole.yaml", "total_steps=1500", "agent.learning_starts_steps=300",
        "log.every_steps=300", "eval.every_steps=750", "eval.episodes=3", "--quiet",
        "encoder.mlp.hidden_sizes=[64,64]", "agent.batch_size=32"]  # small: the runs are compared, not judged
TAGS = ("charts/episodic_return", "losses/td_loss", "values/q_mean", "eval/episodic_return")


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    runs = {}
    # one process for all three: a run leaves nothing behind that changes the next one
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert train_in_process(*ARGS, f"seed={seed}", f"run_dir={tmp_path / name}") == 0
        runs[name] = read_scalars(tmp_path / name)
    for tag in TAGS:
        assert runs["a"][tag] == runs["b"][tag], tag
    assert runs["a"]["losses/td_loss"] != runs["c"]["losses/td_loss"]
