"""Evaluate a trained agent: howsure-evaluate RUN_DIR_OR_CHECKPOINT [--episodes N] [--video DIR] [--gif F]

(python evaluate.py ... in a source checkout.)

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

import gymnasium as gym
import numpy as np

from howsure import gif, rundir, seeding
from howsure.envs.atari import is_atari, protocol
from howsure.errors import UserError, cli_main
from howsure.evaluation import (
    GifFrames,
    VideoWriter,
    check_renders,
    evaluate_agent,
    frame_annotator,
    load_run,
    make_eval_envs,
    video_fps,
)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="run directory (uses checkpoints/final.pt, else latest.pt), a .pt file, "
                   "or a watch-only export folder (pretrained/pong)")
    p.add_argument("--episodes", type=int, default=None, help="episodes to play (default: the config's eval.episodes)")
    p.add_argument("--epsilon", type=float, default=None, help="exploration while playing (default: eval.epsilon)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    p.add_argument("--video", metavar="DIR", help="write one MP4 per episode of the colour screen")
    p.add_argument("--gif", metavar="OUT.gif", help="write the first episode as a looping animated GIF, at most "
                   "160 pixels wide, for a web page or a README")
    p.add_argument("--gif-frames", type=int, default=gif.MAX_FRAMES, metavar="N",
                   help=f"frames of the first episode the GIF keeps (default {gif.MAX_FRAMES}: 30 s of Atari; "
                   "0: the whole episode)")
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
        check_output_file("--json", args.json, "eval.json")
    if args.render and (args.video or args.gif):
        raise UserError("--render shows the game in a window and --video/--gif record it; use one of them per run")
    if args.gif_frames < 0:
        raise UserError(f"--gif-frames must be 0 (the whole episode) or a number of frames, got {args.gif_frames}")
    if args.gif:
        out = Path(args.gif)
        if out.suffix.lower() != ".gif":
            raise UserError(f"--gif {args.gif!r}: name a file ending in .gif, e.g. {str(out.with_suffix('.gif'))!r}")
        check_output_file("--gif", args.gif, "agent.gif")
    if args.video:
        video = Path(args.video)
        if video.exists() and not video.is_dir():
            raise UserError(f"--video {args.video!r} is a file; name a folder for the MP4 files")
        owned = rundir.owned_file(video)
        if owned is not None:
            raise UserError(f"--video {args.video!r} is {owned[0]}, which only howsure writes; name another "
                            f"folder for the MP4 files, e.g. {str(owned[1] / 'videos')!r}")
        check_parent_folder("--video", args.video, inside=True)


def check_output_file(flag: str, value: str, example: str) -> None:
    """A file an option will write: not a directory, not below a file, not a file of a run directory
    or an export folder (a config, a checkpoint, ...), in a folder this user may write to."""
    if Path(value).is_dir():
        raise UserError(f"{flag} {value!r} is a directory; name a file, e.g. {str(Path(value) / example)!r}")
    owned = rundir.owned_file(value)
    if owned is not None:
        raise UserError(f"{flag} {value!r} is {owned[0]}, which only howsure writes; name another file, "
                        f"e.g. {str(owned[1] / example)!r}")
    check_parent_folder(flag, value)
    try:
        Path(value).stat()
    except FileNotFoundError:
        pass  # a new file (or a link to one): created when the evaluation is done
    except OSError as err:  # a loop of symbolic links, a name too long, ...
        raise UserError(f"{flag} {value!r} cannot be written ({err.strerror}); name another file") from None
    if Path(value).is_file() and not os.access(value, os.W_OK):
        raise UserError(f"{flag} {value!r} exists and may not be written by this user; name another file")


def check_parent_folder(flag: str, value: str, inside: bool = False) -> None:
    """The nearest existing folder above a path an option will create must be a folder, not a file,
    that this user may create files in (tested with a file created and deleted at once), so an
    unwritable output ends the command before the evaluation plays, not after. inside: `value` is
    itself a folder the option writes into, tested when it exists."""
    path = Path(value)
    candidates = ([path] if inside else []) + list(path.parents)
    parent = next((p for p in candidates if p.exists()), None)
    if parent is None:
        return
    if not parent.is_dir():
        raise UserError(f"{flag} {value!r}: {str(parent)!r} is a file, not a folder")
    why = rundir.cannot_create_in(parent)
    if why is not None:
        raise UserError(f"{flag} {value!r}: cannot create files in {str(parent)!r} ({why}); "
                        "name a path in a folder you may write to")


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    if args.render and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise UserError("--render needs a display and none is set (DISPLAY is empty); "
                        "use --video DIR to get MP4 files instead")
    cfg, agent, meta = load_run(args.path, args.overrides, seed=args.seed)
    if args.uncertainty and not agent.reports_uncertainty:
        raise UserError(f"--uncertainty: agent {cfg.agent.name!r} reports no epistemic uncertainty (bayes_dqn does)")
    if args.render:
        check_renders(cfg.env, "human", "--render")
    for flag in ("--video", "--gif"):
        if getattr(args, flag[2:]):
            check_renders(cfg.env, "rgb_array", flag)
    uncertainty: list[float] | None = [] if args.uncertainty else None
    episodes = args.episodes or cfg.eval.episodes
    epsilon = cfg.eval.epsilon if args.epsilon is None else args.epsilon
    seeding.seed_everything(args.seed)
    render_mode = "human" if args.render else ("rgb_array" if args.video or args.gif else None)
    single = args.render or args.video or args.gif
    eval_envs = make_eval_envs(cfg, num_envs=1 if single else None, render_mode=render_mode)
    annotate = frame_annotator(agent) if args.video or args.gif else None
    fps = video_fps(cfg) if args.video or args.gif else None
    writer = VideoWriter(Path(args.video), fps, annotate) if args.video else None
    gif_frames = GifFrames(annotate, args.gif_frames) if args.gif else None
    if args.gif:
        Path(args.gif).parent.mkdir(parents=True, exist_ok=True)
    sinks = [s for s in (writer, gif_frames) if s is not None]

    def on_frame(episode: int, frame: np.ndarray) -> None:
        for sink in sinks:
            sink(episode, frame)

    try:
        results = evaluate_agent(agent, eval_envs, episodes, epsilon, seed=args.seed,
                                 step=int(meta.get("step", 0)), gamma=cfg.agent.gamma,
                                 on_frame=on_frame if sinks else None, uncertainty=uncertainty)
    except gym.error.DependencyNotInstalled as err:
        raise UserError(f"drawing {cfg.env.id!r} needs an optional package: {str(err).splitlines()[0]}") from None
    finally:
        if writer:
            writer.close()
        eval_envs.close()
    returns = [e.episodic_return for e in results]
    how = (protocol(cfg.env) if is_atari(cfg.env.id)
           else f"max_episode_steps={cfg.env.max_episode_steps or 'env default'}")
    for i, e in enumerate(results):
        print(f"episode {i:3d}: return {e.episodic_return:9.2f}  discounted {e.discounted_return:9.3f}  "
              f"length {e.length}"
              + (f"  epistemic std {uncertainty[i]:.4f}" if uncertainty is not None else ""))
    print(f"{cfg.agent.name} on {cfg.env.id}, {episodes} episodes, epsilon={epsilon}: mean {np.mean(returns):.2f} "
          f"std {np.std(returns):.2f} min {np.min(returns):.2f} max {np.max(returns):.2f}")
    print(f"protocol: {how}")
    if writer:
        print(f"videos: {', '.join(str(p) for p in writer.paths)}")
    if gif_frames is not None:
        Path(args.gif).write_bytes(gif.encode(gif_frames.stack(), fps))
        print(f"gif: {args.gif} ({len(gif_frames.frames)} frames of episode 0)")
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
