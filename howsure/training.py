"""The training loop: collect -> store -> learn -> log -> evaluate/checkpoint, in run_loop().

run_loop() is the one loop body: train() feeds it from the run's own vector envs, and
howsure/distributed.py from Ray actors (howsure/experience.py). Also the run directory's life
cycle around it: a new run's directory (prepare_run_dir), a resumed run's config and checkpoint
(load_resume), the periodic evaluation and the summary. howsure/cli/train.py is the command.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from howsure import checkpoint, config, dashboards, envs, export, rundir, runstate, seeding, tracking, wiring
from howsure.agents import make_agent
from howsure.errors import UserError
from howsure.evaluation import evaluate_agent, make_eval_envs
from howsure.experience import Chunk, Experience, LocalExperience
from howsure.learner import Learner
from howsure.logger import Logger
from howsure.loopstate import LoopState
from howsure.replay import Batch, make_replay
from howsure.runtime import configure_torch, describe_switches, resolve_auto


def crossed(before: int, now: int, every: int) -> bool:
    """True when a multiple of `every` lies in (before, now]."""
    return every > 0 and now // every > before // every


class StopFlag:
    """Ctrl-C / SIGTERM ask the loop to stop at the next step boundary and checkpoint."""

    def __init__(self):
        self.raised = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.raised:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def open_logger(cfg: config.Config, run_dir: Path, step: int, resume: dict | None, used: dict) -> Logger:
    """The run's TensorBoard writer, and with log.track its wandb mirror (howsure/tracking.py). A
    new run gets its config text and custom-scalars layout; a resumed one drops the events written
    after its checkpoint's step (they were logged before the crash, not saved)."""
    track = (lambda: tracking.start(cfg, run_dir, used, resume is not None)) if cfg.log.track else None
    logger = Logger(run_dir, purge_step=step + 1 if resume is not None else None, track=track)
    if resume is None:
        logger.text("config", dashboards.config_text(used))
        logger.custom_scalars(dashboards.scalars_layout())
    return logger


def learner_view(agent_cfg, rewards: np.ndarray, terminated: np.ndarray,
                 lives_lost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the learner sees of a step (agents/base.py's AgentConfig): sign(r) with clip_rewards,
    and a lost life as the end of bootstrapping with terminal_on_life_loss. Logged scores stay raw."""
    if agent_cfg.clip_rewards:
        rewards = np.sign(rewards).astype(np.float32)
    if agent_cfg.terminal_on_life_loss:
        terminated = terminated | lives_lost
    return rewards, terminated


@dataclass
class Hooks:
    """Callbacks into the loop for callers that watch or stop a run (howsure.api.train, benchmarks,
    tests)."""
    # once the agent is built, before the first step: (agent, env spec)
    on_start: Callable[[object, object], None] | None = None
    # after each chunk is stored, before its episodes are counted: (chunk, agent step after it)
    on_chunk: Callable[[Chunk, int], None] | None = None
    # each finished training episode: ((return, discounted return, length), agent step); True stops the run
    on_episode: Callable[[tuple[float, float, int], int], bool] | None = None
    # after each periodic evaluation: (agent step, its mean return); True stops the run (final checkpoint)
    on_eval: Callable[[int, float], bool] | None = None


def train(cfg: config.Config, run_dir: Path, resume: dict | None = None, replace: bool = False,
          hooks: Hooks | None = None) -> dict:
    """Train into run_dir (locked by the caller) with the run's own vector envs. replace: the old
    run there (--overwrite) is deleted only once this run is accepted, so a refused start keeps it."""
    cfg, _ = resolve_auto(cfg)  # a no-op where main() already resolved them
    configure_torch(cfg)
    seeding.seed_everything(cfg.seed)
    stepper = envs.VectorStepper(envs.make_vector_env(cfg.env, cfg.env.num_envs, workers=cfg.env.env_workers))
    spec = envs.spec_of(cfg.env.id, stepper.envs)
    agent = make_agent(cfg, spec)
    buffer = make_replay(cfg.replay, spec, cfg.agent.gamma, seed=cfg.seed) if agent.uses_replay else None
    if buffer is not None and agent.needs_sequences != buffer.sequences:
        stepper.close()
        raise UserError(f"encoder {cfg.encoder.name!r} with replay.kind={cfg.replay.kind!r}: a recurrent "
                        "encoder learns from sequences and only it does; use replay.kind=sequence exactly "
                        "when encoder.name=lstm")
    source = LocalExperience(stepper, agent, cfg.env.num_envs, cfg.agent.gamma, cfg.seed,
                             workers=bool(cfg.env.env_workers))
    return run_loop(cfg, run_dir, spec, agent, buffer, source, resume, replace, hooks)


def run_loop(cfg: config.Config, run_dir: Path, spec, agent, buffer, source: Experience,
             resume: dict | None = None, replace: bool = False, hooks: Hooks | None = None) -> dict:
    """The loop of every run, local or distributed: collect -> store -> learn -> log ->
    evaluate/checkpoint, until total_steps, the wall-clock cap, eval.stop_return, a hook or Ctrl-C.

    `source` (howsure/experience.py) hands over experience in chunks; `buffer` is the replay, or
    None for agents that learn from the latest step (PQN, tabular). Writes the run directory:
    TensorBoard events, checkpoints (latest, best, final), model.safetensors and summary.json."""
    hooks = hooks or Hooks()
    gamma = cfg.agent.gamma
    eval_envs = make_eval_envs(cfg) if cfg.eval.every_steps > 0 else None

    step, loop = accept_run(cfg, run_dir, agent, buffer, resume, replace)

    used = dashboards.config_in_use(cfg, agent, spec)  # the config without sections this run never reads
    logger = open_logger(cfg, run_dir, step, resume, used)
    if resume is None:
        logger.text("switches", describe_switches(cfg))  # what the speed switches (auto ones too) came to
    recent: list[float] = []
    # replay agents are TD agents (agents/dqn.py's TDConfig): their schedule bounds the learner's lag
    learner = None if buffer is None else Learner(
        agent, buffer, cfg.agent.batch_size, threaded=cfg.learner_thread and not source.inline_learner,
        max_lag=cfg.agent.updates_per_train)
    warmup = 0 if learner is None else cfg.agent.learning_starts_steps  # acting only, before learning starts
    on_policy: list[dict[str, float]] = []  # update metrics of agents without replay, since the last log
    # learn between send() and receive where the envs step on their own (worker processes, C++ threads)
    overlap = learner is not None and source.steps_in_background

    def learn_during(after: int) -> None:
        if learner is not None:
            learner.learn(updates_due(cfg.agent, after, loop))  # the batch lacks only the newest transition
        elif work := agent.learn_while_stepping():
            on_policy.append(work)
    during = learn_during if overlap or learner is None else None

    def update_means() -> dict[str, float]:
        if learner is not None:
            return learner.take_metrics()
        keys = {k for m in on_policy for k in m}
        means = {k: float(np.mean([m[k] for m in on_policy if k in m])) for k in keys}
        on_policy.clear()
        return means
    t_start = time.perf_counter()
    wall_before = loop.wall_seconds
    wall = lambda: wall_before + time.perf_counter() - t_start  # noqa: E731 - seconds of training, resumes included
    limit_s = None if cfg.time_limit_minutes is None else cfg.time_limit_minutes * 60.0
    save_checkpoint = checkpoint_saver(cfg, spec, run_dir, agent, buffer, loop, wall=wall,
                                       drain=None if learner is None else learner.drain)

    def on_restart(actor: int, cause: str) -> None:
        loop.actor_restarts += 1
        logger.scalar("distributed/actor_restarts", loop.actor_restarts, step)
        tqdm.write(f"step {step:>9,}  actor {actor} failed ({cause}); re-created it with fresh envs "
                   f"(restart {loop.actor_restarts})", file=sys.stdout)
    interrupted = False
    if hooks.on_start is not None:
        hooks.on_start(agent, spec)
    try:
        if started := source.start(step, loop, on_restart):
            logger.scalars(started, step)
        t_log, step_log = time.perf_counter(), step
        # the bar opens once the source has started, so an error starting it (e.g. too few Ray
        # CPUs for the actors) prints alone, without a bar at 0%
        with StopFlag() as stop, tqdm(total=cfg.total_steps, initial=step, disable=cfg.log.quiet, unit="step",
                                      dynamic_ncols=True, mininterval=1.0, file=sys.stdout) as bar:
            while step < cfg.total_steps:
                chunk = source.collect(step, during)
                before, step = step, step + chunk.steps
                if limit_s is not None:
                    agent.note_time_used(wall() / limit_s)
                # store (learner-side reward clipping and life loss; the logged score stays raw)
                stored = [learner_view(cfg.agent, chunk.rewards[t], chunk.terminated[t], chunk.lives_lost[t])
                          for t in range(len(chunk.actions))]
                if learner is not None:
                    for t, (rewards, terminated) in enumerate(stored):
                        learner.add(chunk.obs[t], chunk.actions[t], rewards, chunk.next_obs[t], terminated,
                                    chunk.dones[t], **({} if chunk.states is None else {"states": chunk.states[t]}))
                if hooks.on_chunk is not None:
                    hooks.on_chunk(chunk, step)
                hooked_stop = False
                for episode in chunk.episodes:
                    loop.episodes += 1
                    recent = (recent + [episode[0]])[-20:]
                    logger.scalars({"charts/episodic_return": episode[0], "charts/discounted_return": episode[1],
                                    "charts/episodic_length": episode[2]}, step)
                    if hooks.on_episode is not None and hooks.on_episode(episode, step):
                        hooked_stop = True
                # learn (from replay through the Learner, inline or on its thread; on-policy agents here)
                if learner is not None:
                    if not overlap:
                        learner.learn(updates_due(cfg.agent, step, loop))
                else:
                    for t, (rewards, terminated) in enumerate(stored):  # each vector step, as it came
                        if metrics := agent.update(Batch.from_numpy(chunk.obs[t], chunk.actions[t], rewards,
                                                                    chunk.next_obs[t], terminated, gamma,
                                                                    ends=chunk.dones[t])):
                            on_policy.append(metrics)
                source.learned(step, 0 if learner is None else learner.updates)
                # log
                if crossed(before, step, cfg.log.every_steps):
                    now = time.perf_counter()
                    sps = (step - step_log) / max(now - t_log, 1e-9)
                    sps_tag = dashboards.sps_tag(step_log, warmup)  # an interval with warm-up: charts/SPS_warmup
                    t_log, step_log = now, step
                    logger.scalars({**update_means(), **source.act_metrics(),
                                    **(agent.schedule_metrics(step) if source.logs_schedule else {}),
                                    **source.scalars(), sps_tag: sps}, step)
                    bar.set_postfix(SPS=f"{sps:.0f}",
                                    ret=f"{np.mean(recent):.1f}" if recent else "-", refresh=False)
                bar.update(chunk.steps)
                # the wall-clock cap ends training before anything else starts (the final checkpoint follows)
                if limit_s is not None and wall() >= limit_s:
                    loop.time_limit_step = step
                    break
                # evaluate / checkpoint (their time is left out of charts/SPS: t_log moves past it)
                paused = time.perf_counter()
                if eval_envs is not None and crossed(before, step, cfg.eval.every_steps):
                    if learner is not None:
                        learner.drain()
                    if evaluate_keep_best(agent, eval_envs, cfg, step, logger, loop, save_checkpoint, wall=wall()):
                        break
                    if hooks.on_eval is not None and hooks.on_eval(step, loop.evals[-1][1]):
                        break
                if crossed(before, step, cfg.checkpoint_every_steps):
                    save_checkpoint(step, "latest")
                t_log += time.perf_counter() - paused
                if stop.raised:
                    interrupted = True
                    break
                if hooked_stop:
                    break
    finally:
        if learner is not None:
            learner.close()
        source.close()
    finish_run(cfg, spec, run_dir, agent, logger, used, loop, step, interrupted, save_checkpoint)
    if eval_envs is not None:
        eval_envs.close()
    return write_summary(run_dir, step, loop, interrupted, recent, **source.summary())


def checkpoint_saver(cfg: config.Config, spec, run_dir: Path, agent, buffer, loop: LoopState,
                     wall: Callable[[], float], drain: Callable[[], None] | None = None
                     ) -> Callable[..., None]:
    """save(step, *names, with_replay=True): one checkpoint payload written under each name
    (latest, final, best), with the replay generation it names where cfg.checkpoint_replay; every
    checkpoint of a run, local or distributed, is written through it. drain: finish the updates in
    flight."""
    def save(step: int, *names: str, with_replay: bool = True) -> None:
        if drain is not None:
            drain()
        loop.wall_seconds = wall()
        payload = {
            "meta": {"agent": cfg.agent.name, **spec.meta(), "step": step},
            "config_yaml": config.to_yaml(cfg), "agent": agent.state_dict(),
            "rng": seeding.rng_state(), "step": step, "loop": loop.to_dict(),
        }
        # the checkpoints and the replay generation they name commit together (howsure/runstate.py)
        runstate.save(run_dir, names, payload, buffer if with_replay and cfg.checkpoint_replay else None)
    return save


def evaluate_keep_best(agent, eval_envs, cfg: config.Config, step: int, logger: Logger, loop: LoopState,
                       save: Callable[..., None], wall: float = 0.0) -> bool:
    """A periodic evaluation; a new best score is saved as checkpoints/best.pt (the agent to
    watch). True once eval.stop_return is reached."""
    best_before = loop.best_eval
    reached = evaluate_and_log(agent, eval_envs, cfg, step, logger, loop, wall=wall)
    if loop.best_eval != best_before:
        save(step, "best", with_replay=False)
    return reached


def finish_run(cfg: config.Config, spec, run_dir: Path, agent, logger: Logger, used: dict, loop: LoopState,
               step: int, interrupted: bool, save: Callable[..., None]) -> None:
    """The end of a run: latest.pt (and final.pt, model.safetensors, the HParams and the full
    custom-scalars layout unless interrupted), then the event file is closed."""
    save(step, *(("latest",) if interrupted else ("latest", "final")))
    if not interrupted:
        export_weights(agent, run_dir / "model.safetensors", {"agent": cfg.agent.name, **spec.meta(), "step": step})
        dashboards.write_final(logger, cfg, used, loop, step)
    logger.close()


def updates_due(agent_cfg, step: int, loop: LoopState) -> int:
    """The update schedule of replay agents (DQN's): `updates_per_train` gradient updates every
    `train_every_steps` agent steps, from `learning_starts_steps` on; the updates owed now that
    `step` steps are in, advancing loop.trained_through (kept in checkpoints, so a resume owes none twice)."""
    starts, every = agent_cfg.learning_starts_steps, agent_cfg.train_every_steps
    before, loop.trained_through = loop.trained_through, step
    if step < starts:
        return 0
    return max(step // every - max(before, starts - 1, 0) // every, 0) * agent_cfg.updates_per_train


def accept_run(cfg: config.Config, run_dir: Path, agent, buffer, resume: dict | None,
               replace: bool) -> tuple[int, LoopState]:
    """(step, loop) to start from: the checkpoint's agent, RNG and replay when resuming. Called
    once every check has passed, so a refused start leaves the previous run and its config.yaml
    as they were; only then is the run --overwrite replaces deleted and config.yaml written."""
    step, loop = 0, LoopState()
    if resume is not None:
        agent.load_state_dict(resume["agent"])
        seeding.set_rng_state(resume["rng"])
        step, loop = int(resume["step"]), LoopState.from_dict(resume["loop"])
        if "trained_through" not in resume["loop"]:  # written before the schedule moved into the loop
            loop.trained_through = int(resume["agent"].get("trained_through", step))
        if buffer is not None:
            runstate.load_replay(run_dir, resume, buffer)  # the generation the checkpoint names
    if replace:
        rundir.clear(run_dir)
    rundir.write_text_atomic(run_dir / "config.yaml", config.to_yaml(cfg))
    return step, loop


def evaluate_and_log(agent, eval_envs, cfg: config.Config, step: int, logger: Logger, loop: LoopState,
                     wall: float = 0.0) -> bool:
    """Periodic evaluation during training: logs eval/*, returns True once eval.stop_return is reached."""
    seed = cfg.seed + 1_000_003 + step
    first: list[np.ndarray] = []  # the first episode's observations, for the uncertainty pictures

    def keep(episode: int, obs: np.ndarray) -> None:
        if episode == 0 and len(first) < dashboards.SPREAD_MAX_STATES:
            first.append(np.array(obs))
    stds: list[float] | None = [] if agent.reports_uncertainty else None  # per episode, mean over its steps
    with agent.evaluating():  # a recurrent agent's training-env state is kept apart
        episodes = evaluate_agent(agent, eval_envs, cfg.eval.episodes, cfg.eval.epsilon,
                                  seed=seed, step=step, gamma=cfg.agent.gamma, on_obs=keep, uncertainty=stds)
    dashboards.log_uncertainty(logger, agent, first, step)  # bayes_dqn, boot_dqn: histogram and Q band
    returns = [e.episodic_return for e in episodes]
    mean = float(np.mean(returns))
    scalars = {"eval/episodic_return": mean, "eval/episodic_return_std": float(np.std(returns)),
               "eval/episodic_return_min": float(np.min(returns)), "eval/episodic_return_max": float(np.max(returns)),
               "eval/discounted_return": float(np.mean([e.discounted_return for e in episodes]))}
    if stds:  # the epistemic std of the chosen actions over every step of this evaluation
        lengths = [e.length for e in episodes]
        scalars["uncertainty/eval_epistemic_std"] = float(np.dot(stds, lengths) / sum(lengths))
    logger.scalars(scalars, step)
    loop.record_eval(step, mean, wall)  # wall: seconds of training before it
    if dashboards.video_due(cfg, len(loop.evals)):  # the first episode, replayed on a rendering env
        frames, fps = dashboards.eval_video(agent, cfg, seed=seed, step=step)
        logger.video(dashboards.VIDEO_TAG, frames, fps, step)
    tqdm.write(f"step {step:>9,}  eval return {mean:8.2f} over {len(episodes)} episodes", file=sys.stdout)
    if cfg.eval.stop_return is not None and mean >= cfg.eval.stop_return:
        loop.stopped_at_return = step
        return True
    return False


def write_summary(run_dir: Path, step: int, loop: LoopState, interrupted: bool, recent: list[float],
                  **extra) -> dict:
    summary = {"run_dir": str(run_dir), "step": step, "episodes": loop.episodes,
               "wall_seconds": round(loop.wall_seconds, 2), "best_eval_return": loop.best_eval,
               "stopped_at_return_step": loop.stopped_at_return, "interrupted": interrupted,
               "stopped_at_time_limit_step": loop.time_limit_step,
               "recent_return": float(np.mean(recent)) if recent else None, **extra}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def export_weights(agent, path: Path, meta: dict | None = None) -> None:
    """Weights alone, in safetensors, for use outside howsure (howsure/export.py's format)."""
    if export.weights_of(agent):
        export.write_weights(agent, path, meta)


def default_run_dir(cfg: config.Config) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.env.id.replace('/', '-')}__{cfg.agent.name}__s{cfg.seed}__{stamp}"


def prepare_run_dir(cfg: config.Config, overwrite: bool) -> tuple[config.Config, Path]:
    """The new run's directory, empty and locked by this process (howsure/rundir.py).

    An existing one is replaced only with --overwrite, only when it is a howsure run directory and
    only when no other process holds it; every refusal leaves its files as they were.
    """
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    rundir.check_utf8(run_dir, "run_dir")
    exists = (f"run directory {str(run_dir)!r} already exists; pass --overwrite to replace it, --resume "
              f"{run_dir} to continue it (from Python: overwrite=True, resume=...), or another run_dir=")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run_dir {str(run_dir)!r} is a file, not a folder; pass another run_dir=")
    if run_dir.is_dir() and rundir.entries(run_dir):
        if not rundir.is_run_dir(run_dir):
            if overwrite:
                raise UserError(f"--overwrite deletes only howsure run directories and {str(run_dir)!r} is not "
                                f"one (no {rundir.LOCK_FILE}, no config.yaml beside checkpoints/); nothing was "
                                "deleted: pass another run_dir=")
            raise UserError(f"{str(run_dir)!r} already exists and is not a howsure run directory; "
                            "pass another run_dir=")
        if not overwrite:
            rundir.check_free(run_dir)  # a run in progress is named by its PID
            raise UserError(exists)
        rundir.lock(run_dir)  # train() deletes the old run once the new one is accepted
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        rundir.lock(run_dir)
        if rundir.entries(run_dir):  # another process started a run here between the look and the lock
            rundir.release(run_dir)
            raise UserError(exists)
    return dataclasses.replace(cfg, run_dir=str(run_dir)), run_dir


def load_resume(run_dir: Path, overrides: list[str]) -> tuple[config.Config, dict]:
    """The saved config with `overrides`, and the latest checkpoint; the run directory is locked and
    swept of temp files first. config.yaml is rewritten by train() only once the run is accepted."""
    rundir.check_utf8(run_dir, "--resume")
    if not run_dir.is_dir():
        raise UserError(f"--resume {str(run_dir)!r}: no such run directory")
    if hint := rundir.sweep_hint(run_dir):
        raise UserError(f"--resume {str(run_dir)!r} is not a run directory{hint}")
    if rundir.is_run_dir(run_dir) or (run_dir / "checkpoints" / "latest.pt").is_file():
        rundir.lock(run_dir)  # elsewhere checkpoint.load below names what is missing, creating nothing
        rundir.remove_temp_files(run_dir)
    try:
        state = checkpoint.load(run_dir / "checkpoints" / "latest.pt")
        saved = wiring.from_yaml(state["config_yaml"])  # the device is checked after the overrides
        raw = config.merge(config.to_dict(saved), config.parse_overrides(overrides))
        cfg = wiring.from_dict(raw)
        checkpoint.check_matches(state["meta"], agent=cfg.agent.name, env_id=cfg.env.id,
                                 source=str(run_dir / "checkpoints" / "latest.pt"))
        check_resume_changes(saved, cfg, run_dir)
        check_not_finished(cfg, state, run_dir)
    except BaseException:
        rundir.release(run_dir)  # a refused resume holds nothing (matters when main() runs in-process)
        raise
    return dataclasses.replace(cfg, run_dir=str(run_dir)), state


def check_resume_changes(saved: config.Config, cfg: config.Config, run_dir: Path) -> None:
    """Overrides on --resume may not change what the checkpoint's state belongs to: the encoder's
    settings (an activation fits the same weights and computes something else) or the optimizer
    (its saved state is another optimizer's, which fails at the first update)."""
    changed = list(_differences(config.to_dict(saved.encoder), config.to_dict(cfg.encoder), "encoder."))
    if getattr(saved.agent, "optimizer", None) != getattr(cfg.agent, "optimizer", None):
        changed.append("agent.optimizer")
    if changed:
        raise UserError(f"--resume {str(run_dir)!r}: {', '.join(changed)} cannot change on a resume (the "
                        "checkpoint's weights and optimizer state belong to the saved setting); drop those "
                        "overrides, or start a new run")


def _differences(old: dict, new: dict, prefix: str):
    """The dotted keys whose values differ between two nested dicts."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            yield f"{prefix}{key}"


def check_not_finished(cfg: config.Config, state: dict, run_dir: Path) -> None:
    """A run that already reached total_steps, or used up time_limit_minutes, has nothing to
    resume: going on would rewrite its final checkpoint and summary without training."""
    step, wall = int(state["step"]), float(state["loop"].get("wall_seconds", 0.0))
    if step >= cfg.total_steps:
        raise UserError(f"--resume {str(run_dir)!r}: the run is finished at step {step:,} (total_steps="
                        f"{cfg.total_steps:,}); pass total_steps=N with N > {step} to train it further")
    if cfg.time_limit_minutes is not None and wall >= cfg.time_limit_minutes * 60.0:
        raise UserError(f"--resume {str(run_dir)!r}: the run has used its time_limit_minutes="
                        f"{cfg.time_limit_minutes:g} ({wall / 60:.1f} minutes trained); pass a larger "
                        "time_limit_minutes to train it further")
