"""The store's WAL checkpoints, which the daemon runs after ticks and every 10 s.

A checkpoint copies the store's log into the database file and syncs both; left to SQLite
it runs inside whichever commit crosses 1,000 pages, often a tick's, and holds that tick's
notices up (alertd/store/checkpoint.py). Here it runs once a tick is over, in a worker
thread, at most one at a time and at most one every `GAP` seconds (many small sources must
not make two file syncs each a poll); a failure is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import time

GAP = 5.0  # seconds (monotonic) at least between the starts of two checkpoints
CLOSE_WAIT = 5.0  # seconds the daemon's stop waits for a running checkpoint


class WalCheckpoints:
    """Starts `checkpointer.run()` in a worker thread when asked (`soon`), one at a time.
    `checkpointer` None (an in-memory store) makes every call a no-op."""

    def __init__(self, checkpointer, log, clock=time.monotonic):
        self.checkpointer, self.log, self.clock = checkpointer, log, clock
        self._task: asyncio.Task | None = None
        self._last = -float("inf")  # when the last one started
        self.runs = 0  # checkpoints that finished (tests)

    def soon(self) -> None:
        """Start a checkpoint now unless one is under way or started less than GAP seconds
        ago (never waits for it)."""
        if self.checkpointer is None or self.checkpointer.closed or self.running():
            return
        now = self.clock()
        if now - self._last < GAP:
            return
        self._last = now
        self._task = asyncio.get_running_loop().create_task(self._run())

    def running(self) -> bool:
        """Whether a checkpoint is under way."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        started = time.perf_counter()
        try:
            pages, copied = await asyncio.to_thread(self.checkpointer.run)
        except Exception as exc:  # the writer's own threshold still bounds the log meanwhile
            self.log.warning("wal_checkpoint_failed", error=f"{type(exc).__name__}: {exc}"[:300],
                             retry="after the next tick")
            return
        self.runs += 1
        self.log.debug("wal_checkpoint", pages=pages, copied=copied,
                       ms=round((time.perf_counter() - started) * 1000, 1))

    async def close(self) -> None:
        """Wait (up to CLOSE_WAIT) for a running checkpoint, then close its connection."""
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task], timeout=CLOSE_WAIT)
        if self.checkpointer is not None:
            self.checkpointer.close()
