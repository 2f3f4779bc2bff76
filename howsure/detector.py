"""python -m encoders.detection {label,fit} ...

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

import numpy as np

from howsure.errors import UserError, cli_main


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m encoders.detection", description=__doc__,
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
        from encoders.detection import collect
        from encoders.detection.preview import save_preview

        if args.frames <= 0 or args.every <= 0:
            raise UserError("--frames and --every must be positive")
        data = collect.collect(args.game, args.frames, seed=args.seed, every_steps=args.every,
                               checkpoint=args.checkpoint)
        path = collect.save(data, args.out)
        picks = np.linspace(0, len(data["frames"]) - 1, 8).astype(int)
        gt = collect.per_frame(data, picks)
        png = save_preview(args.preview or f"{args.out}/preview.png",
                           [(f"{data['game']} frame {i}", data["frames"][i], g["boxes"], g["classes"])
                            for i, g in zip(picks, gt)], list(data["class_names"]))
        counts = np.bincount(data["classes"], minlength=len(data["class_names"]))
        print(json.dumps({"data": str(path), "preview": str(png), "frames": len(data["frames"]),
                          "episodes": int(data["episode"].max()) + 1,
                          "boxes_per_class": dict(zip(data["class_names"].tolist(), counts.tolist()))}))
        return 0
    from encoders.detection import fit

    result = fit.fit_cli(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
