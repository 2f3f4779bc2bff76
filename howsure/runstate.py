"""A run's checkpoint and the replay it belongs to, committed together and read back together.

Saving (`save`): the replay writes a new generation beside the old one (replay/files.py), the
checkpoint that names it replaces the old checkpoint atomically, and only then are the old
generation's files removed. The checkpoint's rename is the single commit point, so after a crash
at any moment `--resume` finds a checkpoint and the replay of exactly its step. Ctrl-C and
SIGTERM that arrive during the write wait for it to finish.

Loading (`load_replay`): the generation the checkpoint names is loaded and every other replay
file is removed (what a save cut short left behind).
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from howsure import checkpoint
from howsure.errors import UserError
from howsure.faults import pause_point
from howsure.replay import files as replay_files

REPLAY_DIR = "replay"


@contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM until the block ends, then deliver them to the handlers in place."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in received:
            signal.raise_signal(sig)


def save(run_dir: Path, names: tuple[str, ...], payload: dict, buffer=None) -> None:
    """Write checkpoints/<name>.pt for each name; with a buffer, its replay commits with them."""
    run_dir = Path(run_dir)
    with signals_deferred():
        try:
            generation = buffer.save(run_dir / REPLAY_DIR) if buffer is not None else None
            payload = {**payload, "replay": generation}
            for name in names:
                checkpoint.save(run_dir / "checkpoints" / f"{name}.pt", payload)
        except OSError as err:  # full disk, lost permissions: the previous checkpoint still stands
            raise UserError(f"could not write the checkpoint in {str(run_dir)!r} ({err.strerror or err}); "
                            "the previous checkpoint and its replay are intact: fix that, then --resume") from None
        if generation is not None:
            pause_point("checkpoint_commit")
            replay_files.collect(run_dir / REPLAY_DIR, generation)


def load_replay(run_dir: Path, state: dict, buffer) -> None:
    """Fill `buffer` with the replay generation the checkpoint `state` names.

    A checkpoint that names none (replay not checkpointed) leaves the buffer empty. One that names
    a replay the folder no longer holds resumes with an empty buffer and says so on stderr.
    """
    folder = Path(run_dir) / REPLAY_DIR
    generation = state.get("replay", replay_files.LEGACY_HEADER if "replay" not in state else None)
    if generation is None:
        return
    if not isinstance(generation, str) or Path(generation).name != generation:
        raise UserError(f"checkpoint in {str(run_dir)!r} names its replay as {generation!r}, which is not a file "
                        "of that folder; resume without the replay by deleting the replay folder")
    if not (folder / generation).is_file():
        if "replay" in state:  # a legacy checkpoint without a replay folder had none to lose
            print(f"warning: the replay this checkpoint was saved with ({folder / generation}) is gone; "
                  "resuming with an empty replay (the agent keeps its weights and learns again from "
                  "new experience)", file=sys.stderr)
        return
    buffer.load(folder, generation)
    replay_files.collect(folder, generation)
