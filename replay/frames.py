"""Storage of single frames (uint8), each written once, optionally lz4-compressed.

Uncompressed: one preallocated (slots, H, W) uint8 array; pages are touched as frames arrive.
Compressed: one lz4 block per frame (Pong's 84x84 frames shrink from 7,056 to about 250 bytes),
decompressed at sample time; frames needed twice in a batch are decompressed once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from howsure.replay.files import FolderWriter, load_array

CHUNK_SLOTS = 32_768  # frames per saved file (231 MB uncompressed)
BYTES_OBJECT_OVERHEAD = sys.getsizeof(b"")  # CPython header of each compressed block
ASSUMED_COMPRESSION = 2  # the RAM check assumes at least 2x; Atari frames reach ~25x


def _lz4():
    try:
        import lz4.block
    except ImportError:
        from howsure.errors import UserError

        raise UserError("replay.atari.compress=true needs lz4: pip install lz4 (or pip install howsure[lz4])") from None
    return lz4.block


class FrameStore:
    def __init__(self, n_slots: int, frame_shape: tuple[int, ...], compress: bool = False):
        self.n_slots, self.frame_shape, self.compress = n_slots, tuple(frame_shape), compress
        self.frame_bytes = int(np.prod(frame_shape))
        if compress:
            self._lz4 = _lz4()
            self._blobs: list[bytes | None] = [None] * n_slots
            self._stored_bytes = 0
            self._stored_count = 0
        else:
            self._array = np.zeros((n_slots, *self.frame_shape), dtype=np.uint8)
        self._n_chunks = -(-n_slots // CHUNK_SLOTS)
        self._dirty = np.zeros(self._n_chunks, dtype=np.bool_)
        self._files: dict[str, str] = {}  # saved chunk files, valid for self._saved_dir
        self._saved_dir: Path | None = None

    @staticmethod
    def planned_bytes(n_slots: int, frame_shape: tuple[int, ...], compress: bool) -> int:
        """Bytes this store will hold when full (compressed: assuming ASSUMED_COMPRESSION)."""
        frame = int(np.prod(frame_shape))
        if not compress:
            return n_slots * frame
        return n_slots * (8 + BYTES_OBJECT_OVERHEAD + frame // ASSUMED_COMPRESSION)

    @property
    def nbytes(self) -> int:
        """Allocated bytes (compressed: list slots plus the blocks held now)."""
        if not self.compress:
            return self._array.nbytes
        return 8 * self.n_slots + self._stored_bytes + BYTES_OBJECT_OVERHEAD * self._stored_count

    def put(self, slot: int, frame: np.ndarray) -> None:
        if self.compress:
            old = self._blobs[slot]
            if old is not None:
                self._stored_bytes -= len(old)
                self._stored_count -= 1
            blob = self._lz4.compress(np.ascontiguousarray(frame, dtype=np.uint8), store_size=False)
            self._blobs[slot] = blob
            self._stored_bytes += len(blob)
            self._stored_count += 1
        else:
            self._array[slot] = frame
        self._dirty[slot // CHUNK_SLOTS] = True

    def get(self, slots: np.ndarray) -> np.ndarray:
        """Frames at `slots` (any shape), as an array of shape slots.shape + frame_shape."""
        slots = np.asarray(slots)
        if not self.compress:
            return self._array[slots]
        unique, inverse = np.unique(slots.ravel(), return_inverse=True)
        size, blobs, decompress = self.frame_bytes, self._blobs, self._lz4.decompress
        # one small copy per frame into a preallocated array: joining the blocks into one big
        # bytes object first copies every byte twice
        frames = np.empty((len(unique), size), dtype=np.uint8)
        for i, s in enumerate(unique.tolist()):
            frames[i] = np.frombuffer(decompress(blobs[s], uncompressed_size=size), dtype=np.uint8)
        return frames[inverse].reshape(*slots.shape, *self.frame_shape)

    # ---------------------------------------------------------------- save / load, by chunk
    def save(self, writer: FolderWriter) -> dict[str, str]:
        """Write the chunks changed since the last save into this folder; returns name -> file."""
        same_dir = self._saved_dir is not None and self._saved_dir == writer.directory.resolve()
        files: dict[str, str] = {}
        for c in range(self._n_chunks):
            name = f"frames{c:05d}"
            if not self._dirty[c] and name not in self._files:
                continue  # never written: loads back as zeros
            if same_dir and not self._dirty[c]:
                files.update({k: v for k, v in self._files.items() if k.startswith(name)})
                continue
            lo, hi = c * CHUNK_SLOTS, min((c + 1) * CHUNK_SLOTS, self.n_slots)
            if self.compress:
                blobs = self._blobs[lo:hi]
                lengths = np.array([0 if b is None else len(b) for b in blobs], dtype=np.int32)
                data = np.frombuffer(b"".join(b for b in blobs if b is not None), dtype=np.uint8)
                files[name] = writer.write(name, data)
                files[name + "_lengths"] = writer.write(name + "_lengths", lengths)
            else:
                files[name] = writer.write(name, self._array[lo:hi])
        self._files, self._saved_dir = files, writer.directory.resolve()
        self._dirty[:] = False
        return files

    def load(self, directory: str | Path, files: dict[str, str]) -> None:
        files = {k: v for k, v in files.items() if k.startswith("frames")}
        for c in range(self._n_chunks):
            name = f"frames{c:05d}"
            lo, hi = c * CHUNK_SLOTS, min((c + 1) * CHUNK_SLOTS, self.n_slots)
            if name not in files:
                if self.compress:
                    self._blobs[lo:hi] = [None] * (hi - lo)
                else:
                    self._array[lo:hi] = 0
                continue
            data = load_array(directory, files[name])
            if self.compress:
                lengths = load_array(directory, files[name + "_lengths"])
                if len(lengths) != hi - lo or int(lengths.sum()) != len(data):
                    raise ValueError(f"chunk {name} has the wrong size")
                ends = np.cumsum(lengths, dtype=np.int64)
                raw = data.tobytes()
                self._blobs[lo:hi] = [raw[e - n: e] if n else None for e, n in zip(ends.tolist(), lengths.tolist())]
            else:
                if data.shape != (hi - lo, *self.frame_shape) or data.dtype != np.uint8:
                    raise ValueError(f"chunk {name} has the wrong shape")
                self._array[lo:hi] = data
        if self.compress:
            self._stored_count = sum(b is not None for b in self._blobs)
            self._stored_bytes = sum(len(b) for b in self._blobs if b is not None)
        self._files, self._saved_dir = dict(files), Path(directory).resolve()
        self._dirty[:] = False
