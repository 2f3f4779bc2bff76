"""Run directories: one process per run, --overwrite only of runs, crash debris swept away.

A run directory holds LOCK_FILE for as long as a train.py process works in it: an exclusive
fcntl.flock on that file, taken before anything else in the directory is written and kept until
the process exits. The kernel drops the lock when its holder dies (even by SIGKILL), so a crashed
run never blocks the next start. The file also names the holder's PID, for the refusal message,
and marks the folder as a howsure run directory (together with the older sign: config.yaml beside
checkpoints/ or TensorBoard events), which is what --overwrite insists on before deleting anything.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path

from howsure.errors import UserError

LOCK_FILE = ".howsure.lock"

# Leftovers of writes cut short, by folder: write_text_atomic's config.yaml.<random>.tmp and
# howsure/export.py's model.safetensors.<random>.tmp in the run directory, howsure/checkpoint.py's
# <name>.pt.<random>.tmp, and replay/files.py's header.<token>.json.tmp (older versions also
# left <name>.tmp.npy there).
_TEMP = {
    ".": re.compile(r"^(config\.yaml|model\.safetensors)\..+\.tmp$"),
    "checkpoints": re.compile(r"^.+\.pt\..+\.tmp$"),
    "replay": re.compile(r"^.+\.tmp(\.npy)?$"),
}

_HELD: dict[Path, int] = {}  # resolved run directory -> file descriptor holding its lock


def _key(run_dir: Path) -> Path:
    return Path(run_dir).resolve()


def holder_pid(run_dir: Path) -> int | None:
    """The PID the lock file names, if any (read without locking or writing)."""
    try:
        text = (Path(run_dir) / LOCK_FILE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _try_flock(fd: int, run_dir: Path) -> None:
    """Exclusive, non-blocking flock of `fd`; a UserError naming the holder's PID when taken."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise UserError(f"cannot lock {str(Path(run_dir) / LOCK_FILE)!r} ({err.strerror})") from None
        pid = holder_pid(run_dir)
        who = f"process {pid}" if pid is not None else "another process"
        raise UserError(f"run directory {str(run_dir)!r} is in use by {who} (it holds {LOCK_FILE}); "
                        "wait for it to finish or stop it, or pass another run_dir=") from None


def lock(run_dir: Path) -> None:
    """Take the run directory's lock for the rest of this process (a no-op when already held).

    A lock held by another live process is a UserError naming its PID; nothing is written then.
    """
    key = _key(run_dir)
    if key in _HELD:
        return
    path = key / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: the holder's PID stays readable
    except OSError as err:
        raise UserError(f"cannot create the lock file {str(path)!r} ({err.strerror}); "
                        "use a run_dir= this user may write to") from None
    _try_flock(fd, run_dir)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[key] = fd


def check_free(run_dir: Path) -> None:
    """Refuse (naming the PID) when another process holds the lock; creates and writes nothing."""
    if _key(run_dir) in _HELD:
        return
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return
    except OSError:
        return  # an unreadable lock file cannot be probed; lock() reports it when the run starts
    _try_flock(fd, run_dir)
    os.close(fd)


def release(run_dir: Path) -> None:
    """Drop this process's lock (the lock file stays: it marks the run directory)."""
    fd = _HELD.pop(_key(run_dir), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor of the open file releases the flock


def discard_unused(run_dir: Path, made: bool) -> None:
    """A start refused before it wrote anything (an encoder that does not fit the env, an env that
    rejects its kwargs) leaves no run behind: its lock file goes, and the folder too when this start
    created it. Called while the lock is still held; a folder holding anything else is kept."""
    if _key(run_dir) in _HELD and not entries(run_dir):
        (run_dir / LOCK_FILE).unlink(missing_ok=True)
        if made:
            run_dir.rmdir()


def is_run_dir(path: Path) -> bool:
    """A folder train.py made: its lock file, or config.yaml beside checkpoints/ or TensorBoard events."""
    path = Path(path)
    if (path / LOCK_FILE).is_file():
        return True
    if not (path / "config.yaml").is_file():
        return False
    return (path / "checkpoints").is_dir() or any(path.glob("events.out.tfevents*"))


# What howsure keeps in a run directory (besides LOCK_FILE and TensorBoard event files), and in
# a watch-only export folder (howsure/export.py): never a place for another command's output.
RUN_FILES = ("config.yaml", "summary.json", "model.safetensors")
RUN_FOLDERS = ("checkpoints", "replay", "wandb")
EXPORT_FILES = ("config.yaml", "model.safetensors")


def is_export_dir(path: Path) -> bool:
    """A watch-only export folder: model.safetensors without a run's checkpoints/ (howsure/export.py)."""
    path = Path(path)
    return path.is_dir() and (path / "model.safetensors").is_file() and not (path / "checkpoints").is_dir()


def owned_file(path: str | Path) -> tuple[str, Path] | None:
    """When `path` (existing or not, symlinks followed) is one of the files howsure keeps in a run
    directory or an export folder: (which one, in words, e.g. "a file of the howsure run directory
    '...'", that folder); else None. Another command writing there would replace what training or
    an export wrote."""
    try:
        target = Path(path).expanduser().resolve()
    except (OSError, RuntimeError):  # a symlink loop: the path itself then, made absolute
        target = Path(os.path.abspath(Path(path).expanduser()))
    via = "" if str(target) == os.path.abspath(Path(path).expanduser()) else f"{str(target)!r} (where it leads), "
    for folder in target.parents:
        rel = target.relative_to(folder).parts
        name = rel[0]
        try:
            run, export = is_run_dir(folder), len(rel) == 1 and name in EXPORT_FILES and is_export_dir(folder)
        except OSError:  # an ancestor this user may not look into holds neither
            continue
        if run:
            own = (name in RUN_FOLDERS or name in RUN_FILES or name == LOCK_FILE
                   or name.startswith("events.out.tfevents") or _TEMP["."].match(name))
            if own:
                what = (f"inside {name!r}" if len(rel) > 1 else
                        f"the {name!r} folder" if name in RUN_FOLDERS else "a file")
                return f"{via}{what} of the howsure run directory {str(folder)!r}", folder
        elif export:
            return f"{via}a file of the howsure export folder {str(folder)!r}", folder
    return None


def cannot_create_in(folder: Path) -> str | None:
    """Why this user may not create files in an existing folder (read-only, /proc, ...), tested with
    a file created and deleted at once; None when it may."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".howsure-write-test-", dir=folder)
    except OSError as err:
        return err.strerror or type(err).__name__
    os.close(fd)
    os.unlink(probe)
    return None


def sweep_hint(path: Path) -> str:
    """For a folder that is not a run but holds runs (a sweep's): ' (it holds N runs, e.g. X/seed0:
    pass one of them)', else ''. Added to the messages of --resume and evaluate.py."""
    try:
        runs = sorted(p for p in Path(path).iterdir() if p.is_dir() and is_run_dir(p))
    except OSError:
        return ""
    if not runs or is_run_dir(path):
        return ""
    return f" (it holds {len(runs)} run{'s' if len(runs) > 1 else ''}, e.g. {str(runs[0])!r}: pass one of them)"


def entries(path: Path) -> list[Path]:
    """What a folder holds, apart from a lock file."""
    return [p for p in Path(path).iterdir() if p.name != LOCK_FILE]


def clear(run_dir: Path) -> None:
    """Delete a locked run directory's contents, all but the lock file (still held by this process)."""
    for p in entries(run_dir):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def remove_temp_files(run_dir: Path) -> list[Path]:
    """Delete what interrupted writes left behind; returns the removed paths.

    Runs once the lock is held, so no live writer owns these files. Replay files of generations
    no checkpoint names go when the replay loads (howsure/runstate.py).
    """
    run_dir = Path(run_dir)
    removed: list[Path] = []
    for sub, pattern in _TEMP.items():
        folder = run_dir / sub
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_file() and pattern.match(p.name):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def check_utf8(path: Path, what: str) -> None:
    """Run files (config.yaml, event files) record their own path as text: it must be UTF-8."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{what} {str(path).encode('utf-8', 'replace').decode()!r} is not valid UTF-8; "
                        "pass a path of UTF-8 characters") from None


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and a rename: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
