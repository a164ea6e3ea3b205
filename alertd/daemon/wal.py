"""The store's WAL checkpoints, which the daemon runs after each tick and every 10 s.

A checkpoint copies the store's log into the database file and syncs both; left to SQLite
it runs inside whichever commit crosses 1,000 pages, often a tick's, and holds that tick's
notices up (alertd/store/checkpoint.py). Here it runs once the tick is over, in a worker
thread, at most one at a time; a failure is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import time


class WalCheckpoints:
    """Starts `checkpointer.run()` in a worker thread when asked (`soon`), one at a time.
    `checkpointer` None (an in-memory store) makes every call a no-op."""

    def __init__(self, checkpointer, log):
        self.checkpointer, self.log = checkpointer, log
        self._task: asyncio.Task | None = None
        self.runs = 0  # checkpoints that finished (tests, bench/latency.py --trace)

    def soon(self) -> None:
        """Start a checkpoint now unless one is under way (never waits for it)."""
        if self.checkpointer is None or self.checkpointer.closed or self.running():
            return
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

    async def close(self, timeout: float = 5.0) -> None:
        """Wait (up to `timeout`) for a running checkpoint, then close its connection."""
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task], timeout=timeout)
        if self.checkpointer is not None:
            self.checkpointer.close()
