"""A CartPole whose step() raises once, to test that a distributed actor survives an env exception.

Ray workers import this through a worker_process_setup_hook (tests/test_distributed.py), so the
env id exists in every actor process. The first env to reach `crash_at_step` creates `crash_flag`
and raises; every env after that (and the re-created actor's envs) runs normally.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym

ENV_ID = "howsure-test/FlakyCartPole-v0"


class CrashOnce(gym.Wrapper):
    def __init__(self, env: gym.Env, crash_flag: str, crash_at_step: int):
        super().__init__(env)
        self.flag, self.crash_at, self.steps = Path(crash_flag), crash_at_step, 0

    def step(self, action):
        self.steps += 1
        if self.steps >= self.crash_at and not self.flag.exists():
            self.flag.touch()
            raise RuntimeError("flaky env: simulated emulator crash")
        return self.env.step(action)


def make(crash_flag: str = "", crash_at_step: int = 10**9, **kwargs) -> gym.Env:
    return CrashOnce(gym.make("CartPole-v1", **kwargs), crash_flag or "/nonexistent/flag", crash_at_step)


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=make)
