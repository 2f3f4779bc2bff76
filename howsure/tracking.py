"""Optional experiment tracking: `--track` (log.track=true) mirrors the run to Weights & Biases.

wandb.init(sync_tensorboard=True) runs before the run's SummaryWriter exists, so wandb's TensorBoard
hook sees everything the Logger writes (scalars, histograms, images, videos) and nothing in the
loop calls wandb: the CleanRL and RL Zoo convention. The wandb run lives in RUN_DIR/wandb; a
resumed run continues the same wandb run (its id is kept in RUN_DIR/wandb/howsure-run-id).
WANDB_MODE=offline keeps everything on disk; `wandb sync RUN_DIR/wandb/offline-run-*` uploads it later.
"""

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
    return wandb.init(project=cfg.log.wandb_project, entity=cfg.log.wandb_entity or None, name=run_dir.name,
                      id=run_id, resume="allow", dir=str(run_dir), config=config, sync_tensorboard=True)
