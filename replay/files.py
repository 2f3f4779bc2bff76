"""Crash-safe replay folders: plain .npy files plus JSON headers, never a pickle.

A save is one generation: its arrays are written under fresh names (`<name>.<token>.npy`) and
its header as `header.<token>.json`, which names every file the generation is made of. Nothing
an earlier generation uses is overwritten, and chunks that did not change keep their old files,
so a save of a large replay rewrites only what changed.

A generation becomes the current one when the checkpoint that names it is written
(howsure/runstate.py): the checkpoint and the replay commit as one step. `collect` then removes
every file the current generation does not name. A crash at any moment leaves the previous
checkpoint, the header it names and every file that header names intact.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import numpy as np

from howsure.errors import UserError
from howsure.faults import pause_point

LEGACY_HEADER = "header.json"  # one header per folder, from before generations
_HEADER = re.compile(r"^header\.[0-9a-f]{8}\.json$")
_OURS = re.compile(r"^[A-Za-z0-9_]+\.[0-9a-f]{8}\.npy$")
_TEMP = re.compile(r"^.+\.tmp(\.npy)?$")
_LEGACY_ARRAY = re.compile(r"^[a-z_]+\.npy$")  # <name>.npy of folders from before generations


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FolderWriter:
    """Writes one generation's arrays and header into `directory` under names no earlier save used."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(4)
        self._first = True

    def write(self, name: str, array: np.ndarray) -> str:
        filename = f"{name}.{self.token}.npy"
        np.save(self.directory / filename, np.ascontiguousarray(array), allow_pickle=False)
        _fsync(self.directory / filename)
        if self._first:  # one pause point per save: its first file is written, the rest are not
            self._first = False
            pause_point("replay_write")
        return filename

    def commit(self, header: dict, files: dict[str, str]) -> str:
        """Write this generation's header; returns its file name, for the checkpoint to name."""
        name = f"header.{self.token}.json"
        tmp = self.directory / (name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(json.dumps({**header, "files": files}))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.directory / name)
        pause_point("replay_commit")
        return name


def _check_name(directory: Path, filename: object, what: str) -> str:
    """A file named inside a replay folder must be a plain name in that folder (no path)."""
    if not isinstance(filename, str) or not filename or Path(filename).name != filename or filename in (".", ".."):
        raise UserError(f"replay in {str(directory)!r} names {what} {filename!r}, which is not a file of "
                        "that folder; resume without the replay by deleting that folder")
    return filename


def read_header(directory: str | Path, name: str = LEGACY_HEADER) -> dict:
    """The header `name` of a replay folder, checked to be a JSON object with a `files` table of
    plain file names (legacy headers without `files` pass; their kinds name fixed files)."""
    directory = Path(directory)
    _check_name(directory, name, "a header")
    try:
        header = json.loads((directory / name).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"replay header {name!r} in {str(directory)!r} is missing or corrupt "
                        f"({str(err)[:80]}); resume without the replay by deleting that folder") from None
    if not isinstance(header, dict):
        raise UserError(f"replay header {name!r} in {str(directory)!r} is not a JSON object; "
                        "resume without the replay by deleting that folder")
    files = header.get("files", {})
    if not isinstance(files, dict):
        raise UserError(f"replay header {name!r} in {str(directory)!r} has no table of files; "
                        "resume without the replay by deleting that folder")
    for filename in files.values():
        _check_name(directory, filename, "the file")
    return header


def load_array(directory: str | Path, filename: str) -> np.ndarray:
    directory = Path(directory)
    _check_name(directory, filename, "the file")
    try:
        return np.load(directory / filename, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"replay file {filename!r} in {str(directory)!r} is missing or corrupt ({str(err)[:80]}); "
                        "resume without the replay by deleting that folder") from None


def collect(directory: str | Path, keep: str) -> list[Path]:
    """Remove the files of generations other than `keep` (and temp files); returns them.

    Called once the checkpoint naming `keep` is written, and at every start: what a save cut
    short left behind goes then. Files whose names howsure never writes are left alone.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    named = set(read_header(directory, keep).get("files", {}).values()) | {keep}
    removed = []
    for path in directory.iterdir():
        n = path.name
        if n in named or not path.is_file():
            continue
        legacy = keep != LEGACY_HEADER and (n == LEGACY_HEADER or _LEGACY_ARRAY.match(n))
        if _OURS.match(n) or _HEADER.match(n) or _TEMP.match(n) or legacy:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def newest_header(directory: str | Path) -> str | None:
    """The most recently written header in a folder (tools and tests; resuming uses the one the
    checkpoint names)."""
    directory = Path(directory)
    headers = [p for p in directory.iterdir() if _HEADER.match(p.name)] if directory.is_dir() else []
    if headers:
        return max(headers, key=lambda p: p.stat().st_mtime_ns).name
    return LEGACY_HEADER if (directory / LEGACY_HEADER).is_file() else None


class ChunkedArrays:
    """Arrays saved in chunks along one axis; a save rewrites only the chunks marked changed.

    The replay calls `mark(rows)` for the rows it writes; `save` writes the marked chunks under
    the writer's new names and names the earlier files for the rest.
    """

    def __init__(self, chunk: int, axis: int = 0):
        self.chunk, self.axis = max(1, int(chunk)), axis
        self._dirty: set[int] = set()
        self._files: dict[str, str] = {}
        self._saved_dir: Path | None = None

    def mark(self, rows) -> None:
        self._dirty.update(np.unique(np.asarray(rows, dtype=np.int64) // self.chunk).tolist())

    def _slice(self, lo: int, hi: int) -> tuple:
        return (slice(None),) * self.axis + (slice(lo, hi),)

    def save(self, writer: FolderWriter, arrays: dict[str, np.ndarray], length: int) -> dict[str, str]:
        """Files of the first `length` rows (along the axis) of each array: name_<chunk> -> file."""
        same_dir = self._saved_dir is not None and self._saved_dir == writer.directory.resolve()
        files: dict[str, str] = {}
        for name, array in arrays.items():
            for c in range((length + self.chunk - 1) // self.chunk):
                key = f"{name}_{c:05d}"
                if same_dir and c not in self._dirty and key in self._files:
                    files[key] = self._files[key]
                else:
                    hi = min(length, (c + 1) * self.chunk)
                    files[key] = writer.write(key, array[self._slice(c * self.chunk, hi)])
        self._files, self._saved_dir, self._dirty = files, writer.directory.resolve(), set()
        return files

    def load(self, directory: str | Path, files: dict[str, str], arrays: dict[str, np.ndarray], length: int) -> None:
        """Fill the first `length` rows of each array from `files`; ValueError on any mismatch."""
        for name, array in arrays.items():
            for c in range((length + self.chunk - 1) // self.chunk):
                key = f"{name}_{c:05d}"
                if key not in files:
                    raise ValueError(f"chunk {key} is missing")
                data = load_array(directory, files[key])
                target = array[self._slice(c * self.chunk, min(length, (c + 1) * self.chunk))]
                if data.shape != target.shape or data.dtype != target.dtype:
                    raise ValueError(f"chunk {key} has shape {data.shape} {data.dtype}, expected "
                                     f"{target.shape} {target.dtype}")
                array[self._slice(c * self.chunk, min(length, (c + 1) * self.chunk))] = data
        self._files = {k: v for k, v in files.items()}
        self._saved_dir, self._dirty = Path(directory).resolve(), set()
