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

from howsure import envs, rundir, tracking, wiring
from howsure.errors import UserError
from howsure.evaluation import evaluate_agent, load_run, make_eval_envs
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
    """
    overrides = list(overrides)
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
    return run_dir, summary


def load(path: str | Path, *, seed: int | None = None, overrides: Sequence[str] = ()) -> Policy:
    """A trained agent from a run directory (its final or latest checkpoint), a checkpoint file
    (`RUN/checkpoints/best.pt`) or an export folder (`pretrained/pong`). seed: where its acting
    randomness (epsilon, dropout draws) starts, default the run's seed; overrides: `key=value`
    strings for settings that do not change the network, e.g. `device=cpu` for a GPU-trained run."""
    cfg, agent, meta = load_run(str(path), list(overrides), seed=seed)
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
        stack): its observations are what `act` expects. render_mode: "rgb_array" or "human"."""
        return envs.make_env(self.config.env, render_mode=render_mode)

    def _batch(self, obs) -> tuple[np.ndarray, bool]:
        arr = np.asarray(obs)
        if arr.shape == self.obs_shape:
            return arr[None], True
        if arr.shape[1:] == self.obs_shape:
            return arr, False
        raise UserError(f"observation of shape {arr.shape}: this agent takes {self.obs_shape} or a batch "
                        f"(N, {', '.join(map(str, self.obs_shape))}) from the env policy.make_env() builds")

    def act(self, obs, epsilon: float | None = None):
        """The action for one observation (an int), or actions for a batch (an int array).
        epsilon: the chance of a random action; None plays as evaluate.py does (the config's
        `eval.epsilon`: 0 for most presets, 0.01-0.05 for the Atari ones), 0.0 is greedy. Agents with a
        recurrent encoder keep a state per batch row: call `reset()` when an episode starts."""
        batch, single = self._batch(obs)
        eps = self.config.eval.epsilon if epsilon is None else float(epsilon)
        if not 0.0 <= eps <= 1.0:
            raise UserError(f"epsilon={eps}: a probability, between 0 and 1")
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
        uncertainty. Only agents that report it (bayes_dqn, boot_dqn) and not with an LSTM encoder."""
        batch, single = self._batch(obs)
        spread = self.agent.q_spread(batch, draws) if self.reports_uncertainty else None
        if spread is None:
            why = ("its recurrent encoder's state belongs to an episode" if self.reports_uncertainty
                   else "it has no posterior; bayes_dqn and boot_dqn do")
            raise UserError(f"agent {self.config.agent.name!r} gives no Q spread here: {why}")
        mean, std = spread
        return (mean[0], std[0]) if single else (mean, std)

    def evaluate(self, episodes: int = 10, seed: int = 0, epsilon: float | None = None) -> list[float]:
        """Raw returns of `episodes` full episodes on the config's evaluation envs, seeded from
        `seed` as `evaluate.py --seed` seeds them; a recurrent state `act` holds is kept."""
        if episodes < 1:
            raise UserError(f"episodes={episodes}: at least 1")
        eps = self.config.eval.epsilon if epsilon is None else float(epsilon)
        eval_envs = make_eval_envs(self.config)
        try:
            with self.agent.evaluating():
                results = evaluate_agent(self.agent, eval_envs, episodes, eps, seed=seed, step=self.step,
                                         gamma=self.config.agent.gamma)
        finally:
            eval_envs.close()
        return [e.episodic_return for e in results]
