"""What the training loop knows beyond the agent and the replay: episodes seen, evaluations, the
best score, wall-clock time, how far the update schedule has got and how the run stopped. Saved in
every checkpoint as a plain dict."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class LoopState:
    episodes: int = 0  # finished training episodes
    best_eval: float | None = None  # best periodic evaluation's mean return
    evals: list[list[float]] = field(default_factory=list)  # [step, mean return, seconds of training before it]
    stopped_at_return: int | None = None  # step at which eval.stop_return was reached
    time_limit_step: int | None = None  # step at which time_limit_minutes ended training
    wall_seconds: float = 0.0  # training time so far, resumed runs included
    actor_restarts: int = 0  # distributed runs: actors re-created after a failure
    trained_through: int = 0  # agent step up to which the update schedule has handed out updates

    def record_eval(self, step: int, mean: float, wall: float) -> None:
        """Add an evaluation, and keep the best mean return so far."""
        self.evals.append([step, mean, round(wall, 1)])
        self.best_eval = mean if self.best_eval is None else max(self.best_eval, mean)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> LoopState:
        """A checkpoint's loop; keys a newer or older howsure wrote are ignored or defaulted."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})
