"""Complete, safe checkpoints: written to a temp file then renamed, read with weights_only=True.

A checkpoint holds tensors and plain values only (no pickled objects), together with the
resolved config, so evaluate.py can rebuild the agent and env from the file alone.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from howsure.errors import UserError
from howsure.faults import pause_point
from howsure.rundir import sweep_hint

FORMAT = "howsure-checkpoint/1"
# what every checkpoint train.py writes holds, and the type each must have
REQUIRED = {"meta": dict, "config_yaml": str, "agent": dict, "rng": dict, "step": int, "loop": dict}


def save(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        pause_point("checkpoint_write")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found: pass a run directory or a .pt file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol chatter is not the user's business
            data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError,
            OSError, AttributeError, KeyError, TypeError, IndexError, NotImplementedError) as err:
        raise UserError(f"checkpoint {str(path)!r} is corrupt or not a howsure checkpoint ({unreadable(path, err)}); "
                        f"{instead(path)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(
            f"checkpoint {str(path)!r} is not a {FORMAT} file; use a checkpoint written by train.py"
        )
    for key, kind in REQUIRED.items():
        if not isinstance(data.get(key), kind):
            what = "has no" if key not in data else f"has a {type(data[key]).__name__} as its"
            raise UserError(f"checkpoint {str(path)!r} {what} {key!r} ({kind.__name__} expected); "
                            "use another checkpoint or retrain")
    return data


def unreadable(path: Path, err: Exception) -> str:
    """Why torch.load refused a file, in a few words of our own: torch's text is long and is for
    torch's developers (a request to file an issue, a link), not for someone evaluating a run."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(4)
    except OSError as os_err:
        return f"it cannot be read: {os_err.strerror}"
    if not start:
        return "the file is empty"
    if start != b"PK\x03\x04":  # torch.save writes a zip archive
        return "it is not a file torch.save wrote"
    if not zipfile.is_zipfile(path):
        return "the file is cut short or damaged"
    if isinstance(err, pickle.UnpicklingError):
        return "it holds objects other than tensors and plain values, which are never loaded"
    return "its contents cannot be read"


def instead(path: Path) -> str:
    """What to do about a checkpoint that cannot be used: the run's other checkpoints, else retrain."""
    others = [path.parent / n for n in ("latest.pt", "best.pt", "final.pt")
              if n != path.name and (path.parent / n).is_file()]
    if others:
        return f"use another checkpoint of the run ({' or '.join(repr(str(o)) for o in others)}) or retrain"
    return "use another checkpoint of the run (checkpoints/latest.pt or best.pt) or retrain"


def find(path: str | Path) -> Path:
    """A run directory -> its final (else latest) checkpoint; a file -> itself."""
    path = Path(path)
    if path.is_dir():
        for name in ("final.pt", "latest.pt"):
            candidate = path / "checkpoints" / name
            if candidate.is_file():
                return candidate
        hint = sweep_hint(path)
        raise UserError(f"{str(path)!r} has no checkpoints/final.pt or checkpoints/latest.pt"
                        + (hint or "; train into it first"))
    return path


def check_matches(meta: dict, *, agent: str, env_id: str, source: str) -> None:
    """A checkpoint of another agent or env is refused with both names spelled out."""
    if meta.get("agent") != agent or meta.get("env_id") != env_id:
        raise UserError(
            f"checkpoint {source!r} was written by agent {meta.get('agent')!r} on "
            f"{meta.get('env_id')!r}, not {agent!r} on {env_id!r}; "
            "drop the overrides that change agent.name or env.id"
        )
