"""The loop's state: evaluations keep the best score, and a checkpoint's dict round-trips, with
keys an older or newer howsure wrote defaulted or ignored."""

from __future__ import annotations

from howsure.loopstate import LoopState


def test_evaluations_keep_the_best_and_the_history():
    loop = LoopState()
    loop.record_eval(1000, -3.0, 12.34)
    loop.record_eval(2000, 5.0, 20.0)
    loop.record_eval(3000, 1.0, 30.0)
    assert loop.best_eval == 5.0
    assert loop.evals == [[1000, -3.0, 12.3], [2000, 5.0, 20.0], [3000, 1.0, 30.0]]


def test_a_checkpoint_dict_round_trips_and_old_ones_load():
    loop = LoopState(episodes=7, wall_seconds=3.5, time_limit_step=900)
    loop.record_eval(500, 2.0, 1.0)
    assert LoopState.from_dict(loop.to_dict()) == loop
    old = {"episodes": 3, "best_eval": None, "stopped_at_return": None, "wall_seconds": 1.0, "retired_key": 1}
    restored = LoopState.from_dict(old)
    assert restored.episodes == 3 and restored.evals == [] and restored.actor_restarts == 0
