"""Ape-X style distributed acting on Ray (Horgan et al. 2018, arXiv:1803.00933).

`python train.py --config X distributed.actors=N`: N Ray actors each own a vector of envs and a
copy of the agent used only to act, with its own exploration (Ape-X's per-actor epsilon for
epsilon-greedy agents, its own random draws, e.g. dropout masks, for the others). They send
experience in chunks of `chunk_steps`; the learner (this process) owns the replay, update(), the
Logger, evaluation and checkpoints, and broadcasts fresh weights through Ray's object store
(ray.put) every `weights_every_updates`. An actor that dies is re-created with new envs; the
replay, which lives in the learner, loses nothing but that actor's chunk in flight.

Ray is imported only in here, and only the train command imports this module when actors > 0.
The learner is howsure.training.run_loop, the loop of every run, fed by ActorExperience: it keeps
the agent's replay ratio (train_every_steps, updates_per_train), so curves are comparable with a
single-process run; actors keep stepping while the learner trains.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from howsure import config, seeding, wiring
from howsure.episodes import EpisodeTracker
from howsure.errors import UserError
from howsure.experience import Chunk
from howsure.loopstate import LoopState
from howsure.runtime import configure_torch, resolve_auto

# Agents whose training exploration is epsilon-greedy: exploration=auto gives them Ape-X epsilons.
# Others (bayes_dqn, boot_dqn) act with their own training behaviour and per-actor random draws.
EPSILON_GREEDY_AGENTS = {"dqn"}

# Replays that store whole transitions. Frame-deduplicating, n-step and sequence replays read
# each env row as one ordered stream, which interleaved chunks from several actors would break.
PER_TRANSITION_REPLAYS = {"uniform"}

ROOT = Path(__file__).resolve().parents[1]

# How long the pool waits for every actor's process to be up before training starts.
READY_TIMEOUT_S = 300.0


def ape_x_epsilons(n: int, epsilon: float = 0.4, alpha: float = 7.0) -> list[float]:
    """Ape-X: actor i of N explores with epsilon ** (1 + i / (N - 1) * alpha); one actor: epsilon."""
    if n <= 1:
        return [epsilon] * n
    return [epsilon ** (1 + i / (n - 1) * alpha) for i in range(n)]


def actor_epsilons(cfg: config.Config) -> list[float | None]:
    """Per-actor fixed epsilon, or None where the actor follows the agent's own exploration."""
    d = cfg.distributed
    mode = d.exploration
    if mode == "auto":
        mode = "ape_x_epsilon" if cfg.agent.name in EPSILON_GREEDY_AGENTS else "agent"
    if mode == "agent":
        return [None] * d.actors
    return ape_x_epsilons(d.actors, d.epsilon, d.alpha)


def connect(address: str) -> bool:
    """Join the cluster at `address` / $RAY_ADDRESS, else start a local Ray on this machine's
    cores. Returns True when this call started Ray (so the caller shuts it down)."""
    # Read when ray is imported: no usage reporting, and every worker line shown, not "repeated 3x".
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS", "")
    if head := head_to_probe(address):
        _check_reachable(head)  # Ray itself retries an unreachable GCS for minutes
    # Workers import agents/envs/replay from this checkout: same path on every node.
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}}
    quiet = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=True,
                 configure_logging=True, runtime_env=runtime_env)
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # "local": a new Ray for this run, never a stale or someone else's `ray start` cluster
            ray.init(address="local", num_cpus=os.cpu_count(), **quiet)
    except ConnectionError as err:
        raise UserError(f"cannot join the Ray cluster at {address!r} ({err}); a head started by `ray start "
                        "--head` uses token authentication: export RAY_AUTH_MODE=token here and copy the "
                        "head's ~/.ray/auth_token, or leave distributed.address empty for a local Ray") from None
    return True


def head_to_probe(address: str) -> str | None:
    """The HOST:PORT of a Ray head to check with a plain socket first, or None (a local Ray,
    `auto`, or a ray:// client address)."""
    address = address or os.environ.get("RAY_ADDRESS", "")
    return address if address and address != "auto" and not address.startswith("ray://") else None


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    import socket

    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or address, int(port or 6379)), timeout=timeout_s).close()
    except (OSError, ValueError) as err:
        raise UserError(f"cannot reach the Ray head at {address!r} ({err}); start it there with "
                        "`ray start --head --port=6379`, or leave distributed.address empty") from None


def publish_weights(agent) -> dict[str, dict[str, torch.Tensor]]:
    """What actors need to act: the weights of the agent's exported modules (not the optimizer)."""
    return {name: {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
            for name, m in agent.modules().items()}


def weights_checksum(agent) -> float:
    """Sum of all exported weights; equal on learner and actor when they act with the same ones."""
    total = 0.0
    for m in agent.modules().values():
        for v in m.state_dict().values():
            if v.is_floating_point():
                total += float(v.double().sum())
    return total


class EnvActor:
    """One Ape-X actor: a vector of envs and an acting copy of the agent (wrapped by ray.remote)."""

    def __init__(self, cfg_yaml: str, index: int, seed: int, epsilon: float | None):
        # Every actor is a single-threaded process; parallelism comes from the number of actors.
        torch.set_num_threads(1)
        from howsure import envs
        from howsure.agents import make_agent

        cfg = wiring.from_yaml(cfg_yaml)  # YAML, not pickles of the config dataclasses
        self.index, self.epsilon, self.pid = index, epsilon, os.getpid()
        # Its own seed: own env streams, own epsilon coins, own dropout / head draws.
        seeding.seed_everything(seed)
        self.stepper = envs.VectorStepper(envs.make_vector_env(cfg.env, cfg.env.num_envs))
        spec = envs.spec_of(cfg.env.id, self.stepper.envs)
        self.agent = make_agent(dataclasses.replace(cfg, seed=seed), spec)
        self.n = cfg.env.num_envs
        self.tracker = EpisodeTracker(self.n, cfg.agent.gamma)
        self.obs = self.stepper.reset(seed=seed)
        self.agent.begin_episode(np.arange(self.n))
        self.version = -1
        self.checksum = 0.0

    def collect(self, weights: list, version: int, step: int, vector_steps: int) -> dict[str, Any]:
        """Step the envs `vector_steps` times; `weights` is [ObjectRef] so it is fetched only when
        `version` is new. `step` is the learner's agent step (schedules of non-epsilon agents)."""
        import ray

        t0 = time.perf_counter()
        if version > self.version:
            state = ray.get(weights[0])
            modules = self.agent.modules()
            for name, sd in state.items():
                modules[name].load_state_dict(sd)
            self.version, self.checksum = version, weights_checksum(self.agent)
        obs, acts, rews, nexts, terms, dones, lives, eps = [], [], [], [], [], [], [], []
        for t in range(vector_steps):
            a = self.agent.act(self.obs, step + t * self.n, epsilon=self.epsilon)
            st = self.stepper.step(a)
            obs.append(self.obs)
            acts.append(a)
            rews.append(st.rewards)
            nexts.append(st.next_obs)
            terms.append(st.terminated)
            dones.append(st.dones)
            lives.append(st.lives_lost)
            eps += [(e.episodic_return, e.discounted_return, e.length)
                    for e in self.tracker.step(st.rewards, st.dones)]
            if st.dones.any():
                self.agent.begin_episode(np.flatnonzero(st.dones))
            self.obs = st.obs
        return {"actor": self.index, "pid": self.pid, "version": self.version, "checksum": self.checksum,
                "obs": np.stack(obs), "actions": np.stack(acts), "rewards": np.stack(rews),
                "next_obs": np.stack(nexts), "terminated": np.stack(terms), "dones": np.stack(dones),
                "lives_lost": np.stack(lives), "episodes": eps, "act_metrics": self.agent.act_metrics(),
                "seconds": time.perf_counter() - t0}

    def ping(self) -> int:
        """The actor's process id, once it is up (health checks, tests)."""
        return self.pid

    def close(self) -> None:
        self.stepper.close()


def check_cpus(d, have: float) -> None:
    """The actors must fit the Ray CPUs there are (else Ray would wait for them forever)."""
    if d.actors * d.cpus_per_actor > have + 1e-9:
        raise UserError(f"{d.actors} actors x distributed.cpus_per_actor={d.cpus_per_actor} need "
                        f"{d.actors * d.cpus_per_actor:g} Ray CPUs, the cluster has {have:g}; lower "
                        "distributed.cpus_per_actor (0.5 packs two on a core) or add worker nodes")


class ActorPool:
    """The N actors, each with one chunk in flight; re-creates an actor that fails."""

    def __init__(self, cfg: config.Config, on_restart: Callable[[int, str], None]):
        import ray

        d = cfg.distributed
        check_cpus(d, ray.cluster_resources().get("CPU", 0.0))
        self.cfg, self.cfg_yaml = cfg, config.to_yaml(cfg)
        self.remote_cls = ray.remote(num_cpus=d.cpus_per_actor, max_restarts=0)(EnvActor)
        self.epsilons = actor_epsilons(cfg)
        self.vector_steps = max(1, -(-d.chunk_steps // cfg.env.num_envs))  # round up
        self.restarts = 0
        self.on_restart = on_restart
        self.handles = [self._spawn(i) for i in range(d.actors)]
        self.pending: dict[Any, int] = {}
        # Start every actor's process before the first chunk is asked for: Ray starts them one by
        # one (seconds each on a busy machine), and on a short run the first actor up would
        # otherwise fill the whole replay alone. An actor whose start fails answers at once with
        # its error (its first collect raises and re-creates it); one still starting after the
        # timeout is left to catch up.
        ray.wait([h.ping.remote() for h in self.handles], num_returns=d.actors, timeout=READY_TIMEOUT_S)

    def _spawn(self, i: int):
        # A re-created actor gets a fresh seed, so it does not replay its predecessor's episodes.
        seed = self.cfg.seed + 10_007 * (i + 1) + 1_000_003 * self.restarts
        return self.remote_cls.remote(self.cfg_yaml, i, seed, self.epsilons[i])

    def submit(self, i: int, weights_ref, version: int, step: int) -> None:
        ref = self.handles[i].collect.remote([weights_ref], version, step, self.vector_steps)
        self.pending[ref] = i

    def next_chunk(self, weights_ref, version: int, step: int) -> dict[str, Any]:
        """Block for the next finished chunk; the actor that sent it starts its next one at once."""
        import ray

        while True:
            (ref,), _ = ray.wait(list(self.pending), num_returns=1)
            i = self.pending.pop(ref)
            try:
                chunk = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError,
                    ray.exceptions.ObjectLostError) as err:
                self._restart(i, err)
                self.submit(i, weights_ref, version, step)
                continue
            self.submit(i, weights_ref, version, step)
            return chunk

    def _restart(self, i: int, err: BaseException) -> None:
        import ray

        self.restarts += 1
        cause = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
        if self.restarts > self.cfg.distributed.max_actor_restarts:
            raise UserError(f"actors failed {self.restarts} times (last: actor {i}: {cause}); fix the "
                            "env or raise distributed.max_actor_restarts")
        try:
            ray.kill(self.handles[i], no_restart=True)  # an env exception leaves the process alive
        except Exception:  # noqa: BLE001 - already dead is fine
            pass
        self.handles[i] = self._spawn(i)
        self.on_restart(i, cause)

    def close(self) -> None:
        import ray

        for h in self.handles:
            try:
                ray.kill(h, no_restart=True)
            except Exception:  # noqa: BLE001
                pass


class ActorExperience:
    """The loop's experience from the Ray actor pool (howsure/experience.py's protocol): each
    chunk is one actor's; after learning, fresh weights are published every
    `weights_every_updates` gradient updates for the actors to fetch with their next chunk."""

    steps_in_background = False  # the actors step on their own anyway: the loop learns after storing
    inline_learner = True  # weights are published from the loop's thread, between updates

    def __init__(self, cfg: config.Config, agent, buffer, on_chunk: Callable[[dict, dict], None] | None = None):
        self.cfg, self.agent, self.buffer, self.on_chunk = cfg, agent, buffer, on_chunk
        self.pool: ActorPool | None = None
        self.started = False
        self.version, self.updates = 0, 0
        self.weights_ref = None
        self.published: dict[int, float] = {}
        self.actor_steps = [0] * cfg.distributed.actors
        self.act_sums: dict[str, list[float]] = {}
        self.last: dict[str, Any] = {}
        self.loop = LoopState()  # the run's, from start(): it counts actor restarts across resumes
        self.logs_schedule = True

    def start(self, step: int, loop: LoopState, on_restart: Callable[[int, str], None]) -> dict[str, float]:
        import ray

        self.loop = loop
        self.started = connect(self.cfg.distributed.address)
        self.pool = ActorPool(self.cfg, on_restart)
        eps = self.pool.epsilons
        self.logs_schedule = eps[0] is None  # Ape-X epsilons replace the agent's schedule
        self._publish(ray)
        for i in range(self.cfg.distributed.actors):
            self.pool.submit(i, self.weights_ref, self.version, step)
        return {} if eps[0] is None else {f"distributed/epsilon_actor_{i}": e for i, e in enumerate(eps)}

    def _publish(self, ray) -> None:
        self.weights_ref = ray.put(publish_weights(self.agent))  # actors fetch it with their next chunk
        self.published[self.version] = weights_checksum(self.agent)
        self.published.pop(self.version - 1000, None)

    def collect(self, step: int, during: Callable[[int], None] | None = None) -> Chunk:
        chunk = self.pool.next_chunk(self.weights_ref, self.version, step)
        T, n = chunk["actions"].shape[:2]
        self.actor_steps[chunk["actor"]] += T * n
        for k, v in chunk["act_metrics"].items():
            self.act_sums.setdefault(k, []).append(v)
        self.last = {k: chunk[k] for k in ("actor", "pid", "version", "checksum", "seconds")} | {"steps": T * n}
        return Chunk(chunk["obs"], chunk["actions"], chunk["rewards"], chunk["next_obs"], chunk["terminated"],
                     chunk["dones"], chunk["lives_lost"], [tuple(e) for e in chunk["episodes"]])

    def learned(self, step: int, updates: int) -> None:
        every = self.cfg.distributed.weights_every_updates
        if updates // every > self.updates // every:
            import ray

            self.version += 1
            self._publish(ray)
        self.updates = updates
        if self.on_chunk is not None:
            self.on_chunk(self.last, {"step": step, "version": self.version, "published": self.published,
                                      "replay_size": len(self.buffer), "pool": self.pool})

    def act_metrics(self) -> dict[str, float]:
        out = {k: float(np.mean(v)) for k, v in self.act_sums.items()}
        self.act_sums = {}
        return out

    def scalars(self) -> dict[str, float]:
        return {"distributed/weights_version": self.version, "distributed/actor_restarts": self.loop.actor_restarts}

    def summary(self) -> dict:
        return {"actors": self.cfg.distributed.actors, "actor_steps": self.actor_steps,
                "actor_restarts": self.loop.actor_restarts, "updates": self.updates, "weights_version": self.version,
                "replay_size": len(self.buffer)}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self.started:
            import ray

            ray.shutdown()


def train_distributed(cfg: config.Config, run_dir: Path, resume: dict | None = None,
                      on_chunk: Callable[[dict, dict], None] | None = None, replace: bool = False) -> dict:
    """The learner: howsure.training.run_loop fed by the actors, so the TensorBoard tags,
    checkpoints (latest, best, final) and summary.json are train()'s, plus distributed/* scalars.

    on_chunk(chunk_meta, learner_info), if given, is called after each chunk is stored and learned
    from (tests use it to watch weight versions and to kill an actor's process)."""
    from howsure import envs
    from howsure.agents import make_agent
    from howsure.replay import make_replay
    from howsure.training import run_loop

    d = cfg.distributed
    if d.actors <= 0:
        raise UserError("distributed.actors must be positive for distributed training")
    if d.chunk_steps <= 0 or d.weights_every_updates <= 0:
        raise UserError("distributed.chunk_steps and distributed.weights_every_updates must be positive")
    if cfg.replay.kind not in PER_TRANSITION_REPLAYS or cfg.replay.n_step != 1:
        raise UserError(f"replay.kind={cfg.replay.kind} with n_step={cfg.replay.n_step} "
                        "needs each env's steps in order, but actors' chunks interleave; use "
                        "replay.kind=uniform replay.n_step=1 with distributed.actors > 0")
    # before the run directory is written, so a refused start leaves none
    if head := head_to_probe(d.address):
        _check_reachable(head)
    elif not (d.address or os.environ.get("RAY_ADDRESS")):
        check_cpus(d, float(os.cpu_count() or 1))  # connect() starts a local Ray with every core
    cfg, _ = resolve_auto(cfg)
    configure_torch(cfg)
    seeding.seed_everything(cfg.seed)
    probe = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, probe)
    probe.close()
    agent = make_agent(cfg, spec)
    if not agent.uses_replay:
        raise UserError(f"agent {cfg.agent.name!r} learns from the latest step, not a replay; "
                        "train it with distributed.actors=0")
    buffer = make_replay(cfg.replay, spec, cfg.agent.gamma, seed=cfg.seed)
    return run_loop(cfg, run_dir, spec, agent, buffer, ActorExperience(cfg, agent, buffer, on_chunk), resume, replace)
