"""Make the detection encoder's detector: label frames by playing a real game (random actions, or a
trained agent's checkpoint so later-game screens appear too, with the same preprocessing the agent
sees), then fit the RetinaNet-style detector on them (encoders/detection).

python -m howsure.detector {label,fit} ...

  label --game ALE/Pong-v5 --frames 3000 --out data/pong [--checkpoint RUN] [--preview x.png]
      plays the game (random actions, or a trained agent), labels every frame automatically and
      writes DIR/labels.npz (read with allow_pickle=False) and DIR/preview.png.
  fit --data data/pong --out pong.pt [--minutes 8] [--eval-fraction 0.2]
      trains the RetinaNet-style detector and prints mAP@0.5 and mAP@[.5:.95] on the held-out
      frames (the last episodes of the data, never seen in training) as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

import gymnasium as gym
import numpy as np

from howsure import envs, wiring
from howsure.encoders.detection.labels import game_labels, game_name, label_raw
from howsure.envs.objects import DetectObjects
from howsure.errors import UserError, cli_main
from howsure.evaluation import load_run


def _preprocessing(env):
    """The AtariPreprocessing wrapper inside env (it holds the raw max-pooled frame)."""
    while not hasattr(env, "obs_buffer"):
        env = env.env
    return env


def _objects(env):
    """The DetectObjects wrapper inside env when the agent sees objects (env.detector), else None."""
    while isinstance(env, gym.Wrapper) and not isinstance(env, DetectObjects):
        env = env.env
    return env if isinstance(env, DetectObjects) else None


def collect(env_id: str, frames: int, *, seed: int = 0, every_steps: int = 2, checkpoint: str | None = None,
            epsilon: float = 0.05) -> dict[str, np.ndarray]:
    """Play until `frames` frames are labelled, one every `every_steps` agent steps.

    Returns arrays for np.savez: frames (N, 84, 84) uint8, boxes (M, 4) float32 in frame pixels,
    classes (M,) int64, frame_index (M,) int64, episode (N,) int64, class_names (C,) str, game str.
    """
    game = game_labels(env_id)
    agent = None
    if checkpoint:
        cfg, agent, _ = load_run(checkpoint, seed=seed)
        if cfg.env.id != env_id:
            raise UserError(f"--checkpoint plays {cfg.env.id!r}, not {env_id!r}; pass a checkpoint of this game")
        env_cfg = cfg.env
    else:
        env_cfg = wiring.load(None, [f"env.id={env_id}"]).env
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


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m howsure.detector", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("label", help="collect and label frames by playing")
    lab.add_argument("--game", required=True, help="ALE env id, e.g. ALE/Pong-v5")
    lab.add_argument("--frames", type=int, default=2000, help="labelled frames to collect")
    lab.add_argument("--out", required=True, help="output directory")
    lab.add_argument("--every", type=int, default=2, help="agent steps between collected frames")
    lab.add_argument("--checkpoint", help="play with this trained agent (run dir or .pt) instead of randomly")
    lab.add_argument("--seed", type=int, default=0)
    lab.add_argument("--preview", help="PNG path for sample frames with boxes (default: OUT/preview.png)")
    fit = sub.add_parser("fit", help="train the detector and report held-out mAP")
    fit.add_argument("--data", required=True, help="directory (or labels.npz) written by `label`")
    fit.add_argument("--out", required=True, help="detector checkpoint to write (.pt)")
    fit.add_argument("--minutes", type=float, default=8.0, help="wall-clock training budget")
    fit.add_argument("--max-updates", type=int, default=4000, help="gradient updates at most")
    fit.add_argument("--eval-fraction", type=float, default=0.2, help="share of frames held out (last episodes)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps the default")
    fit.add_argument("--preview", help="PNG of held-out frames with detections")
    return p.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "label":
        from howsure.encoders.detection import dataset
        from howsure.encoders.detection.preview import save_preview

        if args.frames <= 0 or args.every <= 0:
            raise UserError("--frames and --every must be positive")
        data = collect(args.game, args.frames, seed=args.seed, every_steps=args.every, checkpoint=args.checkpoint)
        path = dataset.save(data, args.out)
        picks = np.linspace(0, len(data["frames"]) - 1, 8).astype(int)
        gt = dataset.per_frame(data, picks)
        png = save_preview(args.preview or f"{args.out}/preview.png",
                           [(f"{data['game']} frame {i}", data["frames"][i], g["boxes"], g["classes"])
                            for i, g in zip(picks, gt)], list(data["class_names"]))
        counts = np.bincount(data["classes"], minlength=len(data["class_names"]))
        print(json.dumps({"data": str(path), "preview": str(png), "frames": len(data["frames"]),
                          "episodes": int(data["episode"].max()) + 1,
                          "boxes_per_class": dict(zip(data["class_names"].tolist(), counts.tolist()))}))
        return 0
    from howsure.encoders.detection import fit

    result = fit.fit_cli(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
