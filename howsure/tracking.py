"""Optional experiment tracking: `--track` (log.track=true) mirrors the run to Weights & Biases.

wandb's TensorBoard hook (wandb.tensorboard.patch) is installed before the run's SummaryWriter
exists, so wandb reads everything the Logger writes (scalars, histograms, images, videos) from the
event file and nothing in the loop calls wandb: the CleanRL and RL Zoo convention. The wandb run
lives in RUN_DIR/wandb; a resumed run continues the same wandb run (its id is kept in
RUN_DIR/wandb/howsure-run-id). WANDB_MODE=offline keeps everything on disk;
`wandb sync RUN_DIR/wandb/offline-run-*` uploads it later.

The hook is installed with save=False and root_logdir=RUN_DIR, not by wandb.init(sync_tensorboard=True):
wandb watches the log folder recursively, and with save=True it links each event file it finds into
RUN_DIR/wandb/<run>/files/, inside the folder it watches, where it finds the link as a new event file,
reads the whole stream again and links that too (dozens of times over, when the run folder is under
the current directory). So the values reach wandb's history once and RUN_DIR keeps one event file;
the event file itself is not uploaded to wandb (it stays in RUN_DIR for TensorBoard and howsure.plot).
root_logdir=RUN_DIR keeps the tags as the Logger wrote them (no folder prefix) and spares wandb its
10-second wait to guess a root folder."""

from __future__ import annotations

import secrets
from pathlib import Path

from howsure.errors import UserError

ID_FILE = "howsure-run-id"


def require_wandb() -> None:
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise UserError("--track (log.track=true) needs Weights & Biases: pip install -e '.[track]' "
                        "(or pip install wandb), or drop --track") from None


def start(cfg, run_dir: Path, config: dict, resumed: bool):
    """Start (or, for a resumed run, continue) the wandb run of run_dir; returns it."""
    require_wandb()
    import wandb

    folder = run_dir / "wandb"
    folder.mkdir(parents=True, exist_ok=True)
    id_file = folder / ID_FILE
    run_id = id_file.read_text().strip() if resumed and id_file.is_file() else secrets.token_hex(4)
    id_file.write_text(run_id + "\n")
    # one hook per process, and it is this run's: a run before it in this process (an in-process
    # sweep, the tests) left its own in place, with its own root folder
    if wandb.patched["tensorboard"]:
        wandb.tensorboard.unpatch()
    wandb.tensorboard.patch(root_logdir=str(run_dir), save=False)
    return wandb.init(project=cfg.log.wandb_project, entity=cfg.log.wandb_entity or None, name=run_dir.name,
                      id=run_id, resume="allow", dir=str(run_dir), config=config)
