"""Evaluate a trained agent: python evaluate.py RUN_DIR_OR_CHECKPOINT [--episodes N] [--video DIR]

Rebuilds env and agent from the config stored in the checkpoint, plays full episodes and prints
the raw game score (mean, std, min, max). Atari follows the published protocol: sticky actions
0.25 (Machado et al. 2018), up to 30 no-op starts, full-game scores, 108,000-frame cap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

import envs
from agents import make_agent
from envs.atari import is_atari, protocol
from howsure import checkpoint, config, export, seeding
from howsure.episodes import Episode, EpisodeTracker
from howsure.errors import UserError, cli_main


def make_eval_envs(cfg: config.Config, num_envs: int | None = None, render_mode: str | None = None):
    """Evaluation envs: NEXT_STEP autoreset, so a finished env shows its last frame until reset."""
    k = num_envs or max(1, min(cfg.eval.num_envs, cfg.eval.episodes))
    # training waits while it evaluates, so C++ vector envs may step on every core
    return envs.make_vector_env(cfg.env, k, same_step=False, render_mode=render_mode, threads=os.cpu_count())


def evaluate_agent(agent, eval_envs, episodes: int, epsilon: float, *, seed: int, step: int,
                   gamma: float, on_frame: Callable[[int, np.ndarray], None] | None = None,
                   uncertainty: list[float] | None = None) -> list[Episode]:
    """Play `episodes` full episodes, each env one episode per round; returns them in order.

    uncertainty: a list that receives, in the same order, each episode's mean epistemic std
    (agent.last_epistemic_std() after every act; bayes_dqn reports it).

    Every env starts each round from reset, so no episode is cut short or favoured for being short.
    on_frame(episode_index, rgb) receives env 0's screen after reset and after every step.
    """
    k = eval_envs.num_envs
    results: list[Episode] = []
    rnd = 0
    while len(results) < episodes:
        want = min(k, episodes - len(results))
        obs, _ = eval_envs.reset(seed=seed + rnd * k)
        agent.begin_episode(np.arange(k))
        tracker = EpisodeTracker(k, gamma)
        active = np.arange(k) < want
        finished: list[Episode] = []
        std_sums = np.zeros(k)
        if on_frame:
            on_frame(len(results), eval_envs.render()[0])
        while active.any():
            actions = agent.act(obs, step, epsilon=epsilon)
            if uncertainty is not None:
                std_sums += np.where(active, agent.last_epistemic_std(), 0.0)
            obs, rewards, terminated, truncated, _ = eval_envs.step(actions)
            if on_frame and active[0]:
                on_frame(len(results), eval_envs.render()[0])
            done = (terminated | truncated) & active
            finished += tracker.step(np.where(active, rewards, 0.0), done)
            active &= ~done
        results += sorted(finished, key=lambda e: e.env_index)
        if uncertainty is not None:
            uncertainty += [float(std_sums[e.env_index] / e.length) for e in sorted(finished, key=lambda e: e.env_index)]
        rnd += 1
    return results


def load_run(path: str, overrides: list[str] | None = None):
    """(config, agent, checkpoint meta) rebuilt from a run directory, a checkpoint file or a
    watch-only export (howsure/export.py)."""
    if export.is_export(path):
        saved, meta, tensors = export.read_export(path)
        ckpt_path, state = Path(path), None
    else:
        ckpt_path = checkpoint.find(path)
        state = checkpoint.load(ckpt_path)
        saved, meta = config.from_yaml(state["config_yaml"]), state["meta"]
    # the device is checked here, after the overrides (device=cpu plays a GPU-trained run)
    cfg = config.from_dict(config.merge(config.to_dict(saved), config.parse_overrides(overrides or [])))
    checkpoint.check_matches(meta, agent=cfg.agent.name, env_id=cfg.env.id, source=str(ckpt_path))
    env = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, env)
    env.close()
    if list(spec.obs_shape) != list(meta["obs_shape"]) or spec.n_actions != meta["n_actions"]:
        raise UserError(
            f"checkpoint {str(ckpt_path)!r} expects observations {tuple(meta['obs_shape'])} and "
            f"{meta['n_actions']} actions, this env gives {spec.obs_shape} and {spec.n_actions}; "
            "keep the env settings it was trained with"
        )
    agent = make_agent(cfg, spec)
    if state is None:
        export.load_weights(agent, tensors, str(ckpt_path))
    else:
        agent.load_state_dict(state["agent"])
    return cfg, agent, meta


def frame_annotator(agent) -> Callable[[np.ndarray], np.ndarray]:
    """agent.annotate, then the `annotate_frame` hook of any module inside the agent's networks
    (the detection encoder draws its boxes), so encoders draw whatever agent they sit in."""
    hooks = [m.annotate_frame for net in agent.modules().values() for m in net.modules()
             if callable(getattr(m, "annotate_frame", None))]

    def annotate(frame: np.ndarray) -> np.ndarray:
        frame = agent.annotate(frame)
        for hook in hooks:
            frame = hook(frame)
        return frame

    return annotate


class VideoWriter:
    """One MP4 per episode of the full-colour screen (not the agent's 84x84 input)."""

    def __init__(self, directory: Path, fps: float, annotate: Callable[[np.ndarray], np.ndarray] | None = None):
        self.directory, self.fps, self.annotate = directory, fps, annotate
        self.directory.mkdir(parents=True, exist_ok=True)
        self.writer, self.index, self.paths = None, -1, []

    def __call__(self, episode: int, frame: np.ndarray) -> None:
        import imageio.v2 as imageio

        if episode != self.index:
            self.close()
            path = self.directory / f"episode-{episode:03d}.mp4"
            self.writer = imageio.get_writer(path, fps=self.fps, codec="libx264", quality=7,
                                             macro_block_size=1, pixelformat="yuv420p")
            self.index = episode
            self.paths.append(path)
        if self.annotate is not None:
            frame = self.annotate(frame)
        h, w = frame.shape[:2]
        self.writer.append_data(np.ascontiguousarray(frame[: h - h % 2, : w - w % 2]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


ATARI_HZ = 60.0  # the console's frame rate: one agent step shows frame_skip emulator frames


def video_fps(cfg: config.Config) -> float:
    """Frames per second that play the game at its real speed (Atari: 60 / frame_skip)."""
    if is_atari(cfg.env.id):
        return ATARI_HZ / cfg.env.frame_skip
    env = envs.make_env(cfg.env)
    fps = float(env.metadata.get("render_fps") or 30)
    env.close()
    return fps


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="run directory (uses checkpoints/final.pt, else latest.pt), a .pt file, "
                   "or a watch-only export folder (pretrained/pong)")
    p.add_argument("--episodes", type=int, default=None, help="episodes to play (default: the config's eval.episodes)")
    p.add_argument("--epsilon", type=float, default=None, help="exploration while playing (default: eval.epsilon)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    p.add_argument("--video", metavar="DIR", help="write one MP4 per episode of the colour screen")
    p.add_argument("--render", action="store_true", help="show the game in a live window")
    p.add_argument("--uncertainty", action="store_true",
                   help="print and save each episode's mean epistemic std (agents that report it, e.g. bayes_dqn)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. env.sticky_action_prob=0")
    return p.parse_intermixed_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Flag values, refused before anything is loaded or played."""
    if args.episodes is not None and args.episodes <= 0:
        raise UserError(f"--episodes must be a positive number of episodes, got {args.episodes}")
    if args.seed < 0:
        raise UserError(f"--seed must be an integer >= 0, got {args.seed}")
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:
        raise UserError(f"--epsilon must be in [0, 1], got {args.epsilon}")
    if args.json:
        out = Path(args.json)
        if out.is_dir():
            raise UserError(f"--json {args.json!r} is a directory; name a file, e.g. {str(out / 'eval.json')!r}")
        parent = next((p for p in out.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise UserError(f"--json {args.json!r}: {str(parent)!r} is a file, not a folder")
    if args.video:
        video = Path(args.video)
        if video.exists() and not video.is_dir():
            raise UserError(f"--video {args.video!r} is a file; name a folder for the MP4 files")
        parent = next((p for p in video.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise UserError(f"--video {args.video!r}: {str(parent)!r} is a file, not a folder")


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    if args.render and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise UserError("--render needs a display and none is set (DISPLAY is empty); "
                        "use --video DIR to get MP4 files instead")
    cfg, agent, meta = load_run(args.path, args.overrides)
    if args.uncertainty and not hasattr(agent, "last_epistemic_std"):
        raise UserError(f"--uncertainty: agent {cfg.agent.name!r} reports no epistemic uncertainty (bayes_dqn does)")
    uncertainty: list[float] | None = [] if args.uncertainty else None
    episodes = args.episodes or cfg.eval.episodes
    epsilon = cfg.eval.epsilon if args.epsilon is None else args.epsilon
    seeding.seed_everything(args.seed)
    render_mode = "human" if args.render else ("rgb_array" if args.video else None)
    single = args.render or args.video
    eval_envs = make_eval_envs(cfg, num_envs=1 if single else None, render_mode=render_mode)
    writer = VideoWriter(Path(args.video), video_fps(cfg), frame_annotator(agent)) if args.video else None
    try:
        results = evaluate_agent(agent, eval_envs, episodes, epsilon, seed=args.seed,
                                 step=int(meta.get("step", 0)), gamma=cfg.agent.gamma, on_frame=writer,
                                 uncertainty=uncertainty)
    except gym.error.DependencyNotInstalled as err:
        raise UserError(f"drawing {cfg.env.id!r} needs an optional package: {str(err).splitlines()[0]}") from None
    finally:
        if writer:
            writer.close()
        eval_envs.close()
    returns = [e.episodic_return for e in results]
    how = protocol(cfg.env) if is_atari(cfg.env.id) else f"max_episode_steps={cfg.env.max_episode_steps or 'env default'}"
    for i, e in enumerate(results):
        print(f"episode {i:3d}: return {e.episodic_return:9.2f}  discounted {e.discounted_return:9.3f}  length {e.length}"
              + (f"  epistemic std {uncertainty[i]:.4f}" if uncertainty is not None else ""))
    print(f"{cfg.agent.name} on {cfg.env.id}, {episodes} episodes, epsilon={epsilon}: mean {np.mean(returns):.2f} "
          f"std {np.std(returns):.2f} min {np.min(returns):.2f} max {np.max(returns):.2f}")
    print(f"protocol: {how}")
    if writer:
        print(f"videos: {', '.join(str(p) for p in writer.paths)}")
    if args.json:
        out = {"env_id": cfg.env.id, "agent": cfg.agent.name, "episodes": episodes, "epsilon": epsilon,
               "protocol": how, "checkpoint_step": int(meta.get("step", 0)), "returns": returns,
               "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
               "min_return": float(np.min(returns)), "max_return": float(np.max(returns)),
               "discounted_returns": [e.discounted_return for e in results],
               "lengths": [e.length for e in results]}
        if uncertainty is not None:
            out["uncertainty"] = uncertainty  # per episode: mean epistemic std of the chosen action's Q
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
