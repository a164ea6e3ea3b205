"""WAL checkpoints on a connection of their own, off the path from a commit to its notice.

In WAL mode a commit appends pages to the log; a checkpoint copies the log back into the
database file and syncs both files. By default SQLite checkpoints inside the commit that
takes the log past 1,000 pages (`wal_autocheckpoint`): at 10,000 samples a poll that is
about every fourth tick, and then one commit, the one between a slice's transitions and
their notice, takes 10-25 ms more on a shared disk (`bench/latency.py --trace`).

So the daemon's connection checkpoints by itself only past `AUTO_PAGES` (a safety net: a
daemon whose `Checkpointer` is not run still bounds its log) and the daemon runs
`Checkpointer.run()` after each tick and every 10 s, in a worker thread: SQLite copies and
syncs without the GIL, so the event loop and the detector go on meanwhile. A PASSIVE
checkpoint never waits for readers or the writer; what it cannot copy now, the next one does.
"""

from __future__ import annotations

import sqlite3
import threading
from urllib.parse import quote

AUTO_PAGES = 10_000  # the writer's own checkpoint threshold (pages of the log, 4 KiB each)
BUSY_TIMEOUT = 1.0  # seconds a checkpoint waits for a lock: a PASSIVE one retries at the next tick


class Checkpointer:
    """Runs PASSIVE checkpoints of the store at `path` on its own connection (one at a time;
    any thread). `run()` returns (log pages, pages copied) of that checkpoint."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.closed = False

    def run(self) -> tuple[int, int]:
        with self._lock:
            if self.closed:
                return (0, 0)
            if self._db is None:
                # mode=rw: never create the file (a store deleted under the daemon must stay
                # missing for its check, not come back empty)
                self._db = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True,
                                           check_same_thread=False, isolation_level=None)
                self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            try:
                _busy, log, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                if self.closed:  # closed while this ran: the connection goes with it
                    self._close()
            return (max(log, 0), max(copied, 0))

    def close(self) -> None:
        """Close the connection (a checkpoint under way closes it when it ends: this never
        waits for the disk); later runs do nothing."""
        self.closed = True
        if self._lock.acquire(blocking=False):
            try:
                self._close()
            finally:
                self._lock.release()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
