"""One thin layer over TensorBoard's SummaryWriter, with CleanRL's tag names.

charts/episodic_return, charts/discounted_return, charts/episodic_length, charts/epsilon,
charts/SPS, losses/td_loss, values/q_mean, eval/episodic_return. The step axis is agent steps.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


class Logger:
    def __init__(self, log_dir: str | Path, purge_step: int | None = None):
        # purge_step drops events a crashed run wrote after its last checkpoint, so a resumed
        # run's curves continue without duplicated steps.
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step, flush_secs=10)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, float(value), step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self.writer.add_text(tag, text, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def read_scalars(log_dir: str | Path, wall_time: bool = False) -> dict[str, list[tuple]]:
    """All scalars of a run directory's event files, as {tag: [(step, value), ...]}; with
    wall_time, [(step, value, seconds since the run's first scalar), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    events = {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}
    if not wall_time:
        return {tag: [(e.step, e.value) for e in evs] for tag, evs in events.items()}
    t0 = min((evs[0].wall_time for evs in events.values() if evs), default=0.0)
    return {tag: [(e.step, e.value, e.wall_time - t0) for e in evs] for tag, evs in events.items()}
