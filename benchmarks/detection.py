"""Detector quality and training time: for each game, label frames by playing, train the
RetinaNet-style detector for at most --minutes, and measure COCO mAP on held-out frames.

Prints JSON {game: {"map50", "map50_95", "train_minutes", ...}}. The issue's goal: map50 >= 0.9
on Pong and Breakout, each trained in under 15 minutes on 2 CPU cores.

    python benchmarks/detection.py --frames 1500 --minutes 10 --json benchmarks/results/detection.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.report, run as a script

from benchmarks.report import positive_int  # noqa: E402
from howsure.errors import cli_main  # noqa: E402


@cli_main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", nargs="+", default=["ALE/Pong-v5", "ALE/Breakout-v5"])
    p.add_argument("--frames", type=positive_int, default=1500, help="labelled frames per game (20%% held out)")
    p.add_argument("--every", type=positive_int, default=3, help="agent steps between collected frames")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per game, wall clock")
    p.add_argument("--max-updates", type=positive_int, default=6000)
    p.add_argument("--threads", type=positive_int, default=2, help="torch threads (the goal is stated for 2 cores)")
    p.add_argument("--data", help="reuse DIR/<Game>/labels.npz instead of collecting")
    p.add_argument("--save", help="write DIR/<game>.pt detectors and DIR/<game>_detections.png previews")
    p.add_argument("--json", help="also write the JSON here")
    args = p.parse_args(argv)

    import numpy as np
    import torch
    from howsure.encoders.detection import dataset, fit
    from howsure.encoders.detection.labels import game_name
    from howsure.encoders.detection.model import save_detector
    from howsure.encoders.detection.preview import save_preview

    from howsure import machine
    from howsure.detector import collect

    torch.set_num_threads(args.threads)
    started = machine.describe()
    results = {}
    for env_id in args.games:
        name = game_name(env_id)
        if args.data:
            data = dataset.load(Path(args.data) / name)
        else:
            data = collect(env_id, args.frames, seed=0, every_steps=args.every)
        model, res = fit.fit(data, minutes=args.minutes, max_updates=args.max_updates, seed=0, log_every=200)
        results[name] = {"map50": round(res["map50"], 4), "map50_95": round(res["map50_95"], 4),
                         "train_minutes": res["train_minutes"], "updates": res["updates"],
                         "train_frames": res["train_frames"], "eval_frames": res["eval_frames"],
                         "threads": args.threads}
        if args.save:
            out = Path(args.save)
            save_detector(out / f"{name.lower()}.pt", model, {"metrics": {k: float(v) for k, v in res.items()},
                                                              "game": name})
            _, ev = fit.split(data, 0.2)
            picks = ev[np.linspace(0, len(ev) - 1, 4).astype(int)]
            _, dets = fit.evaluate(model, data, picks)
            save_preview(out / f"{name.lower()}_detections.png",
                         [(f"{name} held-out {i}, detections >= 0.5", data["frames"][i], d["boxes"][d["scores"] >= 0.5],
                           d["classes"][d["scores"] >= 0.5]) for i, d in zip(picks, dets)],
                         list(data["class_names"]))
        print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    text = json.dumps({**results, "machine": machine.ended(started)}, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
