"""Collect labelled frames by playing a real game: random actions, or a trained agent's
checkpoint (so later-game screens appear too), with the same preprocessing the agent sees."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from encoders.detection.labels import game_labels, game_name, label_raw


def _preprocessing(env):
    """The AtariPreprocessing wrapper inside env (it holds the raw max-pooled frame)."""
    while not hasattr(env, "obs_buffer"):
        env = env.env
    return env


def _objects(env):
    """The DetectObjects wrapper inside env when the agent sees objects (env.detector), else None."""
    from envs.objects import DetectObjects

    while isinstance(env, gym.Wrapper) and not isinstance(env, DetectObjects):
        env = env.env
    return env if isinstance(env, DetectObjects) else None


def collect(env_id: str, frames: int, *, seed: int = 0, every_steps: int = 2, checkpoint: str | None = None,
            epsilon: float = 0.05) -> dict[str, np.ndarray]:
    """Play until `frames` frames are labelled, one every `every_steps` agent steps.

    Returns arrays for np.savez: frames (N, 84, 84) uint8, boxes (M, 4) float32 in frame pixels,
    classes (M,) int64, frame_index (M,) int64, episode (N,) int64, class_names (C,) str, game str.
    """
    import envs
    from howsure import config

    game = game_labels(env_id)
    agent = None
    if checkpoint:
        from howsure.evaluation import load_run

        cfg, agent, _ = load_run(checkpoint)
        if cfg.env.id != env_id:
            from howsure.errors import UserError

            raise UserError(f"--checkpoint plays {cfg.env.id!r}, not {env_id!r}; pass a checkpoint of this game")
        env_cfg = cfg.env
    else:
        env_cfg = config.load(None, [f"env.id={env_id}"]).env
    env = envs.make_env(env_cfg)
    pre = _preprocessing(env)
    objects = _objects(env)  # an agent that sees objects: the screen comes from the detector's input
    rng = np.random.default_rng(seed)
    out_frames, boxes, classes, frame_index, episodes = [], [], [], [], []
    obs, _ = env.reset(seed=seed)
    episode, step = 0, 0
    if agent is not None:
        agent.begin_episode(np.arange(1))
    while len(out_frames) < frames:
        if agent is not None:
            action = int(agent.act(obs[None], 0, epsilon=epsilon)[0])
        else:
            action = int(rng.integers(env.action_space.n))
        obs, _, terminated, truncated, _ = env.step(action)
        step += 1
        if step % every_steps == 0:
            screen = objects.screen if objects is not None else np.asarray(obs)[-1]
            b, c = label_raw(pre.obs_buffer[0], game, tuple(screen.shape))
            frame_index.append(np.full(len(c), len(out_frames), dtype=np.int64))
            out_frames.append(np.array(screen, copy=True))
            boxes.append(b)
            classes.append(c)
            episodes.append(episode)
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
            if agent is not None:
                agent.begin_episode(np.arange(1))
    env.close()
    return {"frames": np.stack(out_frames), "boxes": np.concatenate(boxes), "classes": np.concatenate(classes),
            "frame_index": np.concatenate(frame_index), "episode": np.asarray(episodes, dtype=np.int64),
            "class_names": np.asarray(game.names), "game": np.asarray(game_name(env_id))}


def save(data: dict[str, np.ndarray], directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "labels.npz"
    np.savez_compressed(path, **data)
    return path


def load(path: str | Path) -> dict[str, np.ndarray]:
    """A labels.npz (or the directory holding it), read without pickle."""
    from howsure.errors import UserError

    path = Path(path)
    if path.is_dir():
        path = path / "labels.npz"
    if not path.is_file():
        raise UserError(f"no labelled data at {str(path)!r}; make it with python -m encoders.detection label")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def per_frame(data: dict[str, np.ndarray], indices) -> list[dict[str, np.ndarray]]:
    """Ground truth of the chosen frames as [{'boxes', 'classes'}]."""
    out = []
    for i in indices:
        m = data["frame_index"] == i
        out.append({"boxes": data["boxes"][m], "classes": data["classes"][m]})
    return out
