"""Train an agent: howsure-train --config dqn_cartpole [key=value ...]

(python train.py ... in a source checkout.) The command line around howsure/api.py's train(),
which starts the loop of howsure/training.py. --config takes a preset's name (the YAML files in
configs/, shipped in the wheel) or the path of a YAML file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from howsure import api, config, rundir, tracking, wiring
from howsure.cli import command
from howsure.errors import UserError, cli_main
from howsure.evaluation import render_modes
from howsure.training import load_resume


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="a preset's name (dqn_cartpole, dqn_pong_hour, ...) or a YAML file")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar (same as log.quiet=true)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config (every key, with the "
                   "overrides) as YAML and exit, without training or creating anything")
    p.add_argument("--seeds", metavar="0,1,2", help="a seed sweep: one run per seed under one folder "
                   "(howsure/sweep.py); plot it with python -m howsure.plot SWEEP_DIR")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                   help="a grid sweep, repeatable: one run per combination of values (and per seed of "
                   "--seeds, else the config's seed), e.g. --sweep agent.lr=1e-4,5e-4")
    p.add_argument("--track", action="store_true", help="mirror the TensorBoard stream to Weights & Biases "
                   "(same as log.track=true; pip install -e '.[track]'; WANDB_MODE=offline keeps it local)")
    p.add_argument("--sweep-backend", choices=["auto", "ray", "serial"], default="auto",
                   help="seeds in parallel as Ray tasks, or one after another (auto: Ray if installed)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. agent.lr=1e-4")
    args = p.parse_intermixed_args(argv)
    if not args.config and not args.resume:
        p.error("pass --config PRESET (e.g. dqn_cartpole) or --resume RUN_DIR")
    if args.resume and args.config:
        p.error("--resume continues a run with its own saved config: drop --config (key=value overrides still apply)")
    if args.resume and args.overwrite:
        p.error("--resume continues a run and --overwrite replaces one: pass only one of them")
    if args.seeds is not None and not args.seeds.strip():
        p.error("--seeds is empty: pass seeds such as --seeds 0,1,2 or --seeds 0-4")
    return args


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = args.overrides + (["log.quiet=true"] if args.quiet else []) + (["log.track=true"] if args.track else [])
    if args.print_config:
        if args.resume:
            cfg, _ = load_resume(Path(args.resume), overrides)  # checks the overrides as a resume would
            rundir.release(Path(args.resume))
        else:
            cfg = wiring.load(args.config, overrides)
        print(config.to_yaml(cfg), end="")
        return 0
    if args.seeds is not None or args.sweep:
        from howsure.sweep import parse_grid, parse_seeds, run_sweep

        if args.resume or not args.config:
            raise UserError("--seeds and --sweep start new runs: pass --config, not --resume")
        grid = parse_grid(args.sweep)
        if args.track:
            tracking.require_wandb()
        runs = run_sweep(args.config, None if args.seeds is None else parse_seeds(args.seeds), overrides,
                         overwrite=args.overwrite, backend=args.sweep_backend, grid=grid,
                         train_command=command("train"))
        # stopped by Ctrl-C: the runs to continue or start are listed above, as for one interrupted run
        return 130 if any(run["status"] != "finished" for run in runs) else 0
    run_dir, summary = api.train(None if args.resume else args.config, overrides, resume=args.resume,
                                 overwrite=args.overwrite)
    if summary["interrupted"]:
        print(f"\ninterrupted at step {summary['step']:,}; checkpoint saved. Continue with:\n"
              f"  {command('train')} --resume {run_dir}")
        return 130
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    if summary.get("stopped_at_time_limit_step") is not None:
        print(f"\nstopped by time_limit_minutes at step {summary['step']:,}; train it further with "
              f"{command('train')} --resume {run_dir} time_limit_minutes=MORE")
    print(f"\ndone: {summary['step']:,} steps in {summary['wall_seconds']:.0f} s, "
          f"{summary['episodes']} episodes, best eval return {fmt(summary['best_eval_return'])}, "
          f"recent training return {fmt(summary['recent_return'])}")
    print(f"  run directory : {run_dir}")
    print(f"  checkpoint    : {run_dir / 'checkpoints' / 'final.pt'}")
    print(f"  TensorBoard   : tensorboard --logdir {run_dir}")
    best = run_dir / "checkpoints" / "best.pt"
    if best.is_file():
        print(f"  best          : {best} (evaluated {summary['best_eval_return']:.2f})")
    watch = best if best.is_file() else run_dir
    env_cfg = wiring.from_yaml((run_dir / "config.yaml").read_text()).env
    video = f" --video {run_dir / 'videos'}" if "rgb_array" in render_modes(env_cfg) else ""  # NChain draws nothing
    print(f"  watch it play : {command('evaluate')} {watch} --episodes 5{video}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
