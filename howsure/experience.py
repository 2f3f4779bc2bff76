"""Where the training loop's experience comes from.

The loop (howsure.training.run_loop) takes experience in chunks of T vector steps of n envs and
does not know who stepped them. LocalExperience steps the run's own vector envs with the agent,
one vector step per chunk; howsure.distributed.ActorExperience hands over the chunks of Ray actors.
Both answer the same small protocol (Experience), so local, distributed and benchmark runs share
one loop body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from howsure.episodes import EpisodeTracker
from howsure.loopstate import LoopState


@dataclass
class Chunk:
    """T vector steps of n envs; every array is (T, n, ...)."""
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray  # raw rewards (the loop applies the learner-side transform)
    next_obs: np.ndarray
    terminated: np.ndarray
    dones: np.ndarray  # terminated or truncated: the episode ended here
    lives_lost: np.ndarray
    episodes: list[tuple[float, float, int]]  # (return, discounted return, length) of episodes that ended
    states: np.ndarray | None = None  # recurrent agents: the state each env acted from (R2D2)

    @property
    def steps(self) -> int:
        """Agent steps in the chunk, summed over envs."""
        return int(self.actions.shape[0] * self.actions.shape[1])


class Experience(Protocol):
    """A source of chunks for the loop."""

    steps_in_background: bool  # the envs step on their own between collect's send and receive
    inline_learner: bool  # the learner must run in the loop's thread (weights are published from it)
    logs_schedule: bool  # the agent's own step schedules (epsilon) are what the acting used

    def start(self, step: int, loop: LoopState, on_restart: Callable[[int, str], None]) -> dict[str, float]:
        """Begin at agent step `step` of a run whose loop state is `loop`; returns scalars to log
        once (e.g. the actors' epsilons). on_restart(actor, cause): an actor was re-created."""

    def collect(self, step: int, during: Callable[[int], None] | None) -> Chunk:
        """The next chunk; `during(step after it)` may run while the envs step (local envs only)."""

    def learned(self, step: int, updates: int) -> None:
        """Called after each chunk's learning with the learner's update count (publish weights)."""

    def act_metrics(self) -> dict[str, float]:
        """Acting scalars (e.g. uncertainty) since the last call."""

    def scalars(self) -> dict[str, float]:
        """The source's own scalars at each log step."""

    def summary(self) -> dict:
        """Extra fields for summary.json."""

    def close(self) -> None:
        """Stop the envs or actors."""


class LocalExperience:
    """The run's own vector envs, stepped with the agent's actions: one vector step per chunk."""

    inline_learner = False
    logs_schedule = True

    def __init__(self, stepper, agent, num_envs: int, gamma: float, seed: int, *, workers: bool = False):
        self.stepper, self.agent, self.seed, self.n = stepper, agent, seed, num_envs
        self.tracker = EpisodeTracker(self.n, gamma)
        # worker processes or C++ threads step the envs while the loop learns (howsure.envs.vector)
        self.steps_in_background = bool(workers or stepper.steps_in_background)
        self.obs: np.ndarray | None = None

    def start(self, step: int, loop: LoopState | None = None,
              on_restart: Callable[[int, str], None] | None = None) -> dict[str, float]:
        self.obs = self.stepper.reset(seed=self.seed + step)  # a resumed run starts fresh episodes
        self.agent.begin_episode(np.arange(self.n))
        return {}

    def collect(self, step: int, during: Callable[[int], None] | None = None) -> Chunk:
        """act -> send -> during(step after) -> receive; `during` runs while the envs step."""
        obs = self.obs
        actions = self.agent.act(obs, step)
        self.stepper.send(actions)
        if during is not None:
            during(step + self.n)
        st = self.stepper.recv()
        state = self.agent.replay_state()  # before begin_episode resets the envs that ended
        if state is not None:
            state = np.array(state)[None]
        episodes = [(e.episodic_return, e.discounted_return, e.length) for e in self.tracker.step(st.rewards, st.dones)]
        if st.dones.any():
            self.agent.begin_episode(np.flatnonzero(st.dones))
        self.obs = st.obs
        return Chunk(obs[None], actions[None], st.rewards[None], st.next_obs[None], st.terminated[None],
                     st.dones[None], st.lives_lost[None], episodes, state)

    def learned(self, step: int, updates: int) -> None:
        """Nothing to publish: the envs act with the learner's own agent."""

    def act_metrics(self) -> dict[str, float]:
        return self.agent.act_metrics()

    def scalars(self) -> dict[str, float]:
        return {}

    def summary(self) -> dict:
        return {}

    def close(self) -> None:
        self.stepper.close()
