"""The learning half of the loop: sample a batch, update the agent, hand back priorities.

Inline (the default) it runs the updates owed at once, in the loop's thread. With
`learner_thread: true` it runs them on a background thread while the loop keeps acting: torch
releases the GIL inside its kernels, so the env steps and the acting forward passes of the next
training round overlap the current update. The thread is never more than one training round
behind (`max_lag` updates), so the replay ratio is the configured one; the acting policy may be up
to one update stale (as Ape-X actors are). Batches are then sampled at thread-dependent moments,
so a run is no longer bit-for-bit repeatable from its seed.
"""

from __future__ import annotations

import dataclasses
import threading


class Learner:
    def __init__(self, agent, buffer, batch_size: int, *, threaded: bool = False, max_lag: int = 1):
        self.agent, self.buffer, self.batch_size = agent, buffer, batch_size
        self.max_lag = max(max_lag, 1)
        self._sums: dict[str, float] = {}
        self._count = 0
        self.updates = 0  # gradient updates done so far
        self._owed = 0
        self._busy = False
        self._error: BaseException | None = None
        self._closed = False
        self._replay_lock = threading.Lock()  # the replay is shared by the loop's add and the thread's sample
        self._cv = threading.Condition()
        self._thread = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="howsure-learner", daemon=True)
            self._thread.start()

    # -- called by the loop ----------------------------------------------------------------
    def add(self, *args, **kwargs) -> None:
        with self._replay_lock:
            self.buffer.add(*args, **kwargs)

    def learn(self, due: int) -> None:
        """Hand over `due` gradient updates; threaded, wait only if the learner falls behind."""
        if self._thread is None:
            for _ in range(due):
                if not self.update_once():
                    break
            return
        with self._cv:
            self._owed += due
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._owed <= self.max_lag or self._error is not None)
        self._raise_if_failed()

    def drain(self) -> None:
        """Wait until every owed update is done (before evaluating, checkpointing or stopping)."""
        if self._thread is None:
            return
        with self._cv:
            self._cv.wait_for(lambda: (self._owed == 0 and not self._busy) or self._error is not None)
        self._raise_if_failed()

    def take_metrics(self) -> dict[str, float]:
        """Means of the update metrics since the last call."""
        with self._cv:
            out = {k: v / self._count for k, v in self._sums.items()} if self._count else {}
            self._sums, self._count = {}, 0
        return out

    def close(self) -> None:
        if self._thread is None:
            return
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join()

    # -- the work --------------------------------------------------------------------------
    def update_once(self) -> bool:
        """One sample -> update -> priorities in the caller's thread; False while the replay holds
        less than a batch."""
        with self._replay_lock:
            if len(self.buffer) < self.batch_size:
                return False
            batch = dataclasses.replace(self.buffer.sample(self.batch_size), data_size=len(self.buffer))
        metrics = self.agent.update(batch)
        priorities = metrics.pop("priorities", None)
        if priorities is not None:
            with self._replay_lock:
                self.buffer.update_priorities(batch.indices, priorities)
        with self._cv:
            for k, v in metrics.items():
                self._sums[k] = self._sums.get(k, 0.0) + v
            self._count += 1
            self.updates += 1
        return True

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._owed > 0 or self._closed)
                if self._owed == 0:  # closed with nothing owed
                    return
                self._busy = True
            try:
                done = self.update_once()
            except BaseException as err:  # noqa: BLE001  re-raised in the loop's thread
                with self._cv:
                    self._error, self._busy = err, False
                    self._cv.notify_all()
                return
            with self._cv:
                # a replay still short of one batch drops what is owed, as the inline loop does
                self._owed = self._owed - 1 if done else 0
                self._busy = False
                self._cv.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
