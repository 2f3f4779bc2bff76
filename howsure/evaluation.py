"""Playing a trained agent: evaluation envs, full episodes, rebuilding a run, and its videos.

Used by evaluate.py (the command), by training's periodic evaluations and by the dashboards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from howsure import checkpoint, config, envs, export, gif, wiring
from howsure.agents import make_agent
from howsure.annotation import FrameAnnotator, UncertaintyBar
from howsure.envs.atari import is_atari
from howsure.episodes import Episode, EpisodeTracker
from howsure.errors import UserError


def make_eval_envs(cfg: config.Config, num_envs: int | None = None, render_mode: str | None = None):
    """Evaluation envs: NEXT_STEP autoreset, so a finished env shows its last frame until reset."""
    k = num_envs or max(1, min(cfg.eval.num_envs, cfg.eval.episodes))
    if render_mode == "rgb_array":
        # rgb_array needs no window; SDL's default driver (pygame: CartPole and friends) probes for a
        # display and prints "error: XDG_RUNTIME_DIR is invalid" on machines without one
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    # training waits while it evaluates, so C++ vector envs may step on every core
    return envs.make_vector_env(cfg.env, k, same_step=False, render_mode=render_mode, threads=os.cpu_count())


_RENDER_MODES: dict[str, tuple[str, ...]] = {}


def render_modes(env_cfg) -> tuple[str, ...]:
    """The render modes the env offers, e.g. ("human", "rgb_array") (asked once per env config and process)."""
    key = repr(env_cfg)
    if key not in _RENDER_MODES:
        env = envs.make_env(env_cfg)
        try:
            _RENDER_MODES[key] = tuple(env.metadata.get("render_modes") or ())
        finally:
            env.close()
    return _RENDER_MODES[key]


def check_renders(env_cfg, mode: str, flag: str) -> None:
    """One line instead of gymnasium's assertion when a flag needs a render mode the env lacks."""
    modes = render_modes(env_cfg)
    if mode not in modes:
        raise UserError(f"{flag}: {env_cfg.id!r} cannot draw {mode!r} frames (its render modes: "
                        f"{', '.join(modes) or 'none'}); evaluate it without {flag}")


def evaluate_agent(agent, eval_envs, episodes: int, epsilon: float, *, seed: int, step: int,
                   gamma: float, on_frame: Callable[[int, np.ndarray], None] | None = None,
                   uncertainty: list[float] | None = None,
                   on_obs: Callable[[int, np.ndarray], None] | None = None) -> list[Episode]:
    """Play `episodes` full episodes, each env one episode per round; returns them in order.

    uncertainty: a list that receives, in the same order, each episode's mean epistemic std
    (agent.last_epistemic_std() after every act; bayes_dqn reports it).

    Every env starts each round from reset, so no episode is cut short or favoured for being short.
    on_frame(episode_index, rgb) receives env 0's screen after reset and after every step.
    on_obs(episode_index, obs) receives env 0's observation before every action it takes.
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
            if on_obs and active[0]:
                on_obs(len(results), obs[0])
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
            uncertainty += [float(std_sums[e.env_index] / e.length)
                            for e in sorted(finished, key=lambda e: e.env_index)]
        rnd += 1
    return results


def load_run(path: str, overrides: list[str] | None = None, seed: int | None = None):
    """(config, agent, checkpoint meta) rebuilt from a run directory, a checkpoint file or a
    watch-only export (howsure/export.py). The agent's acting randomness (epsilon) starts from
    `seed` (default: the config's), not from the training RNG a checkpoint carries, so a
    checkpoint and its export play the same games."""
    if export.is_export(path):
        saved, meta, tensors = export.read_export(path)
        ckpt_path, state = Path(path), None
    else:
        ckpt_path = checkpoint.find(path)
        state = checkpoint.load(ckpt_path)
        saved, meta = wiring.from_yaml(state["config_yaml"]), state["meta"]
    # the device is checked here, after the overrides (device=cpu plays a GPU-trained run)
    cfg = wiring.from_dict(config.merge(config.to_dict(saved), config.parse_overrides(overrides or [])))
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
    agent.reseed(cfg.seed if seed is None else seed)
    return cfg, agent, meta


def frame_annotator(agent) -> Callable[[np.ndarray], np.ndarray]:
    """Every FrameAnnotator that applies to the agent, in turn: its uncertainty bar where it
    reports uncertainty, then any module inside its networks that draws (the detection encoder's
    boxes), so encoders draw whatever agent they sit in."""
    annotators: list[FrameAnnotator] = [UncertaintyBar(agent)] if agent.reports_uncertainty else []
    annotators += [m for net in agent.modules().values() for m in net.modules() if isinstance(m, FrameAnnotator)]

    def annotate(frame: np.ndarray) -> np.ndarray:
        for annotator in annotators:
            frame = annotator.annotate_frame(frame)
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


class GifFrames:
    """The first episode's frames for an animated GIF: annotated, at most gif.MAX_WIDTH wide and
    its first max_frames (default gif.MAX_FRAMES, 30 s of Atari; 0: all), so a page or an event
    file stays small."""

    def __init__(self, annotate: Callable[[np.ndarray], np.ndarray] | None = None, max_frames: int = gif.MAX_FRAMES):
        self.annotate, self.max_frames, self.frames = annotate, max_frames or float("inf"), []

    def __call__(self, episode: int, frame: np.ndarray) -> None:
        if episode == 0 and len(self.frames) < self.max_frames:
            self.frames.append(gif.shrink(self.annotate(frame) if self.annotate else frame))

    def stack(self) -> np.ndarray:
        return np.stack(self.frames)


ATARI_HZ = 60.0  # the console's frame rate: one agent step shows frame_skip emulator frames


def video_fps(cfg: config.Config) -> float:
    """Frames per second that play the game at its real speed (Atari: 60 / frame_skip)."""
    if is_atari(cfg.env.id):
        return ATARI_HZ / cfg.env.frame_skip
    env = envs.make_env(cfg.env)
    fps = float(env.metadata.get("render_fps") or 30)
    env.close()
    return fps
