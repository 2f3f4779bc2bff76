"""A CartPole whose step() raises once, to test that a distributed actor survives an env exception,
and whose construction can be slow in one actor, to test that training waits for every actor.

Ray workers import this through a worker_process_setup_hook (tests/test_distributed.py), so the
env id exists in every actor process. The first env to reach `crash_at_step` creates `crash_flag`
and raises; every env after that (and the re-created actor's envs) runs normally. The first env
built inside a Ray actor creates `slow_flag` and sleeps `slow_start_s` before it returns.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import gymnasium as gym

ENV_ID = "howsure-test/FlakyCartPole-v0"


class CrashOnce(gym.Wrapper):
    def __init__(self, env: gym.Env, crash_flag: str, crash_at_step: int):
        super().__init__(env)
        self.flag, self.crash_at, self.steps = Path(crash_flag), crash_at_step, 0

    def step(self, action):
        self.steps += 1
        if self.steps >= self.crash_at and claim(str(self.flag)):
            raise RuntimeError("flaky env: simulated emulator crash")
        return self.env.step(action)


def in_ray_actor() -> bool:
    if "ray" not in sys.modules:
        return False
    import ray

    return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None


def claim(flag: str) -> bool:
    """True for the one caller, across processes, that creates `flag`."""
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def make(crash_flag: str = "", crash_at_step: int = 10**9, slow_flag: str = "", slow_start_s: float = 0.0,
         **kwargs) -> gym.Env:
    if slow_flag and in_ray_actor() and claim(slow_flag):
        time.sleep(slow_start_s)
    return CrashOnce(gym.make("CartPole-v1", **kwargs), crash_flag or "/nonexistent/flag", crash_at_step)


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=make)
