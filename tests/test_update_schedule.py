"""The update schedule lives in the loop (howsure/training.py), not the agent."""

from types import SimpleNamespace

from howsure.loopstate import LoopState
from howsure.training import updates_due


def test_updates_follow_train_every_and_learning_starts():
    cfg = SimpleNamespace(learning_starts_steps=10, train_every_steps=4, updates_per_train=2)
    loop = LoopState()
    owed = [updates_due(cfg, step, loop) for step in (3, 9, 10, 12, 13, 16, 31)]
    # nothing before step 10; steps 12 and 16 are multiples of 4 (2 updates each); 17..31 hold 20, 24, 28
    assert owed == [0, 0, 0, 2, 0, 2, 6]
    assert loop.trained_through == 31
    assert updates_due(cfg, 31, loop) == 0  # asked twice for the same step: nothing owed twice


def test_a_resumed_schedule_owes_no_update_twice():
    cfg = SimpleNamespace(learning_starts_steps=0, train_every_steps=1, updates_per_train=1)
    whole, first = LoopState(), LoopState()
    total = sum(updates_due(cfg, s, whole) for s in range(1, 101))
    part = sum(updates_due(cfg, s, first) for s in range(1, 51))
    resumed = LoopState.from_dict(first.to_dict())  # through a checkpoint's plain dict
    part += sum(updates_due(cfg, s, resumed) for s in range(51, 101))
    assert total == part == 100
