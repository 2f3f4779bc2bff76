"""howsure from Python: train a config into a run directory, and load a trained agent to act with.

    from howsure.api import load, train

    run_dir, summary = train("dqn_cartpole", ["total_steps=20000", "run_dir=runs/cp"])
    policy = load(run_dir)             # a run directory, a checkpoint file or an export folder
    env = policy.make_env()            # the env it learned on, with the same wrappers
    obs, _ = env.reset(seed=0)
    action = policy.act(obs)           # as evaluate.py plays: the config's evaluation epsilon

`howsure-train` (howsure/cli/train.py) starts its single runs through `train`; `load` rebuilds a
run exactly as `evaluate.py` does (howsure/evaluation.py). Bad input raises `UserError` with the
same one-line message the commands print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch

from howsure import envs, rundir, seeding, tracking, wiring
from howsure.errors import UserError
from howsure.evaluation import check_renders, evaluate_agent, load_run, make_eval_envs
from howsure.runtime import resolve_auto
from howsure.training import Hooks, load_resume, prepare_run_dir
from howsure.training import train as run_training

__all__ = ["Hooks", "Policy", "load", "train"]


def train(config: str | Path | None = None, overrides: Sequence[str] = (), *, resume: str | Path | None = None,
          overwrite: bool = False, hooks: Hooks | None = None) -> tuple[Path, dict]:
    """Train one run and return (run directory, summary).

    config: a preset's name (`dqn_cartpole`) or a YAML file; overrides: `key=value` strings, as on
    the command line (`run_dir=...` picks the folder). resume: continue that run directory from its
    latest checkpoint instead (overrides apply to it, config must be None). The summary holds
    `step`, `episodes`, `best_eval_return`, `recent_return`, `wall_seconds` and `interrupted`.
    hooks: callbacks into the loop (howsure.training.Hooks, importable from here): on_start(agent,
    spec), on_chunk(chunk, step), on_episode((return, discounted, length), step) and on_eval(step,
    mean return); on_episode and on_eval stop the run, with its final checkpoint, by returning True.
    torch's thread count is the run's (`torch_threads`) while it trains and restored afterwards;
    `flush_denormal` and `reuse_freed_memory` are process-wide settings that stay as the run set them.
    """
    overrides = _overrides(overrides)
    if (config is None) == (resume is None):
        raise UserError("train() takes a config (a preset's name or a YAML file) or resume=RUN_DIR, one of the two")
    if resume is not None:
        cfg, state = load_resume(Path(resume), overrides)  # locks the run directory
        run_dir = Path(cfg.run_dir)
        if cfg.log.track:
            try:
                tracking.require_wandb()
            except UserError:
                rundir.release(run_dir)
                raise
    else:
        cfg = wiring.load(str(config), overrides)
        if cfg.log.track:
            tracking.require_wandb()  # before the run directory exists
        envs.register_third_party(cfg.env.register)
        envs.check_id(cfg.env.id)
        made = not (cfg.run_dir and Path(cfg.run_dir).exists())
        cfg, run_dir = prepare_run_dir(cfg, overwrite)  # locks the run directory
        state = None
    threads = torch.get_num_threads()
    try:
        replace = bool(overwrite and resume is None and rundir.entries(run_dir))
        cfg, switches = resolve_auto(cfg)
        if switches:
            print(f"auto switches on this CPU: {', '.join(f'{k}={v}' for k, v in switches.items())}")
        # each runner writes config.yaml once its checks pass
        if cfg.distributed.actors > 0:  # Ray is imported only on this path
            if hooks is not None:
                raise UserError("hooks run inside the local training loop: train with distributed.actors=0 to use them")
            from howsure.distributed import train_distributed

            summary = train_distributed(cfg, run_dir, state, replace=replace)
        else:
            summary = run_training(cfg, run_dir, state, replace=replace, hooks=hooks)
    except BaseException:
        if resume is None:
            rundir.discard_unused(run_dir, made)
        raise
    finally:
        rundir.release(run_dir)
        torch.set_num_threads(threads)
    return run_dir, summary


def _overrides(overrides: Sequence[str]) -> list[str]:
    if isinstance(overrides, str):
        raise UserError(f"overrides={overrides!r}: pass a list of key=value strings, e.g. [{overrides!r}]")
    return list(overrides)


def _count(name: str, value, least: int) -> int:
    """A whole number of at least `least` (episodes, seeds, draws), or a one-line UserError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise UserError(f"{name}={value!r}: a whole number of at least {least}")
    return int(value)


def load(path: str | Path, *, seed: int | None = None, overrides: Sequence[str] = ()) -> Policy:
    """A trained agent from a run directory (its final or latest checkpoint), a checkpoint file
    (`RUN/checkpoints/best.pt`) or an export folder (`pretrained/pong`). seed: where its epsilon
    draws start, default the run's seed (`evaluate()` reseeds from its own seed); overrides:
    `key=value` strings for settings that do not change the network, e.g. `device=cpu` for a
    GPU-trained run."""
    if seed is not None:
        seed = _count("seed", seed, 0)
    cfg, agent, meta = load_run(str(path), _overrides(overrides), seed=seed)
    return Policy(cfg, agent, int(meta.get("step", 0)))


class Policy:
    """A trained agent to use in your own code: `act` takes one observation (or a batch) of the env
    that `make_env` builds and returns its action(s); `uncertainty` gives the spread of Q over the
    agent's posterior (bayes_dqn, boot_dqn). `config` is the run's resolved config, `step` the
    training step the weights come from."""

    def __init__(self, cfg, agent, step: int):
        self.config, self.agent, self.step = cfg, agent, step
        self.obs_shape: tuple[int, ...] = tuple(agent.spec.obs_shape)
        self.n_actions: int = int(agent.spec.n_actions)
        self._rows = 0  # rows of the last batch act() saw (recurrent agents keep a state per row)

    @property
    def reports_uncertainty(self) -> bool:
        return bool(self.agent.reports_uncertainty)

    def make_env(self, render_mode: str | None = None) -> gym.Env:
        """One env as the run's config describes it (id, wrappers, Atari preprocessing and frame
        stack): its observations are what `act` expects. render_mode: "rgb_array" or "human".
        Runs on ale-py's C++ vector env (env.backend=ale_vector) get gymnasium's Atari env: the same
        screens, but other games of the same seeds than `evaluate()` plays."""
        if render_mode is not None:
            check_renders(self.config.env, render_mode, "render_mode")
        return envs.make_env(self.config.env, render_mode=render_mode)

    def _batch(self, obs) -> tuple[np.ndarray, bool]:
        takes = ("a state index or a batch of them" if self.agent.spec.discrete_obs
                 else f"{self.obs_shape} or a batch (N, *{self.obs_shape})")
        want = f"this agent takes {takes} from the env make_env() builds"
        try:
            arr = np.asarray(obs.cpu() if isinstance(obs, torch.Tensor) else obs)
        except ValueError:  # a ragged list
            raise UserError(f"observations of uneven shapes: {want}") from None
        if arr.dtype.kind not in "biuf":
            raise UserError(f"observation of {arr.dtype} values: {want}")
        if arr.shape == self.obs_shape:
            arr, single = arr[None], True
        elif arr.shape[1:] == self.obs_shape and len(arr):
            single = False
        else:
            raise UserError(f"observation of shape {arr.shape}: {want}")
        if self.agent.spec.discrete_obs:  # a state index into the Q-table
            n = self.agent.spec.n_obs
            bad = arr[(arr != np.round(arr)) | (arr < 0) | (arr >= n)]
            if bad.size:
                raise UserError(f"observation {bad[0].item()!r}: this env's states are whole numbers from 0 to {n - 1}")
        return arr, single

    def _epsilon(self, epsilon: float | None) -> float:
        if epsilon is None:
            return self.config.eval.epsilon
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.number)) or not 0 <= epsilon <= 1:
            raise UserError(f"epsilon={epsilon!r}: a probability, between 0 and 1")
        return float(epsilon)

    def act(self, obs, epsilon: float | None = None):
        """The action for one observation (an int), or actions for a batch (an int array).
        epsilon: the chance of a random action; None plays as evaluate.py does (the config's
        `eval.epsilon`: 0 for most presets, 0.01-0.05 for the Atari ones), 0.0 takes no random action
        (a bayes_dqn with eval_dropout still acts on the mean of its dropout draws, which torch's
        global generator draws). Agents with a recurrent encoder keep a state per batch row: call
        `reset()` when an episode starts."""
        batch, single = self._batch(obs)
        eps = self._epsilon(epsilon)
        if len(batch) != self._rows:
            self.reset(len(batch))
        actions = self.agent.act(batch, self.step, epsilon=eps)
        return int(actions[0]) if single else np.asarray(actions)

    def reset(self, rows: int | None = None) -> None:
        """Start new episodes: clears the recurrent state of every row (agents without one ignore it)."""
        self._rows = self._rows if rows is None else rows
        self.agent.begin_episode(np.arange(max(self._rows, 1)))

    def uncertainty(self, obs, draws: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of Q per action over the agent's posterior (dropout draws or heads), each
        (n_actions,) for one observation or (N, n_actions) for a batch; std is the epistemic
        uncertainty. Only agents with a posterior (bayes_dqn, boot_dqn), and not with an LSTM
        encoder. draws: dropout draws (bayes_dqn; default its `n_draws`)."""
        batch, single = self._batch(obs)
        if draws is not None:
            draws = _count("draws", draws, 1)
        spread = self.agent.q_spread(batch, draws)
        if spread is None:
            why = ("its LSTM's state belongs to the episode being played" if getattr(self.agent, "memory", None)
                   else "it has no posterior; bayes_dqn and boot_dqn do")
            raise UserError(f"agent {self.config.agent.name!r} gives no Q spread: {why}")
        mean, std = spread
        return (mean[0], std[0]) if single else (mean, std)

    def evaluate(self, episodes: int = 10, seed: int = 0, epsilon: float | None = None) -> list[float]:
        """Raw returns of `episodes` full episodes on the config's evaluation envs, seeded as
        `evaluate.py --seed` seeds them: the envs, the agent's epsilon draws and the global
        generators (random, NumPy, torch) start from `seed`, so a call repeats its games. A
        recurrent state `act` holds is kept."""
        episodes, seed = _count("episodes", episodes, 1), _count("seed", seed, 0)
        eps = self._epsilon(epsilon)
        self.agent.reseed(seed)
        seeding.seed_everything(seed)
        eval_envs = make_eval_envs(self.config)
        try:
            with self.agent.evaluating():
                results = evaluate_agent(self.agent, eval_envs, episodes, eps, seed=seed, step=self.step,
                                         gamma=self.config.agent.gamma)
        finally:
            eval_envs.close()
        return [e.episodic_return for e in results]
