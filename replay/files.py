"""Crash-safe replay folders: plain .npy files plus one JSON header, never a pickle.

Each save writes its arrays under fresh names (`<name>.<token>.npy`), then atomically replaces
header.json, which names the files that make up the replay, then deletes files no header names.
A crash at any point leaves the previous header and every file it names intact. Unchanged
chunks keep their old files, so a checkpoint of a large replay rewrites only what changed.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import numpy as np

from howsure.errors import UserError

HEADER = "header.json"
_OURS = re.compile(r"^[A-Za-z0-9_]+\.[0-9a-f]{8}\.npy$")


class FolderWriter:
    """Writes one save's arrays into `directory` under names no earlier save used."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(4)

    def write(self, name: str, array: np.ndarray) -> str:
        filename = f"{name}.{self.token}.npy"
        np.save(self.directory / filename, np.ascontiguousarray(array), allow_pickle=False)
        return filename

    def commit(self, header: dict, files: dict[str, str]) -> None:
        """Make this save the current one, then drop the files it no longer needs."""
        tmp = self.directory / (HEADER + ".tmp")
        tmp.write_text(json.dumps({**header, "files": files}))
        tmp.replace(self.directory / HEADER)
        keep = set(files.values())
        for path in self.directory.iterdir():
            if _OURS.match(path.name) and path.name not in keep:
                path.unlink(missing_ok=True)


def read_header(directory: str | Path) -> dict:
    directory = Path(directory)
    try:
        return json.loads((directory / HEADER).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"replay in {str(directory)!r} is missing or corrupt ({err}); "
                        "resume without it by deleting that folder") from None


def load_array(directory: str | Path, filename: str) -> np.ndarray:
    try:
        return np.load(Path(directory) / filename, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"replay file {filename!r} in {str(directory)!r} is missing or corrupt ({err}); "
                        "resume without the replay by deleting that folder") from None


def orphaned_files(directory: str | Path) -> list[Path]:
    """Chunk files of a save cut short: ours by name, yet not named by the current header.

    Empty when the header is missing, unreadable or lists no files (the uniform and sequence
    kinds): then no file can be told to be unused.
    """
    directory = Path(directory)
    try:
        files = json.loads((directory / HEADER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(files, dict):
        return []
    keep = set(files.values())
    return [p for p in directory.iterdir() if _OURS.match(p.name) and p.name not in keep]
