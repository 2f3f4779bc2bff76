"""Named points inside the checkpoint and replay writers where a test can stop the process.

With HOWSURE_PAUSE_AT=<point>[@<n>] and HOWSURE_PAUSE_FILE=<path> in the environment, the n-th
time (default the first) the process reaches <point> it writes its pid to <path> and sleeps
until it is killed, or for HOWSURE_PAUSE_SECONDS when that is set. tests/test_crash_safety.py
uses this to `kill -9` a real train.py at an exact moment of a write. Without the variables a
pause point costs one dictionary lookup.

Points, in the order a checkpoint passes them:
  replay_write       after the first array file of a replay save (the save is half done)
  replay_commit      after the replay's generation header is written, before the checkpoint
  checkpoint_write   after a checkpoint's temp file is complete, before it replaces the old one
  checkpoint_commit  after latest.pt names the new generation, before old replay files are removed
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

POINTS = ("replay_write", "replay_commit", "checkpoint_write", "checkpoint_commit")
_seen: Counter = Counter()


def pause_point(name: str) -> None:
    want = os.environ.get("HOWSURE_PAUSE_AT")
    if not want:
        return
    point, _, nth = want.partition("@")
    if point != name:
        return
    _seen[name] += 1
    if _seen[name] != int(nth or 1):
        return
    Path(os.environ["HOWSURE_PAUSE_FILE"]).write_text(str(os.getpid()))
    end = time.monotonic() + float(os.environ.get("HOWSURE_PAUSE_SECONDS", "inf"))
    while time.monotonic() < end:  # until the test's kill -9, or the pause's end
        time.sleep(0.05)
