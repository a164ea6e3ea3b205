"""The daemon's hold on its store file: the lock, the store's identity, and the file itself.

- One daemon per store (`alertd.store.lock.StoreLock`): a second one stops with one
  sentence naming the first.
- A store deleted or emptied to 0 bytes between two runs makes SQLite start an empty one
  without a word: incidents, silences and pending notices are gone. Each store has an id
  (kv `store_id`), and the lock file remembers the id of the store used last; a new, empty
  store where the lock file says there was another is logged (`store_recreated`, an error
  naming the last run), never silently.
- While running, the file is checked every 10 s (the housekeeping job): deleted, emptied or
  replaced by another file, SQLite would go on writing into a file nobody will open again.
  That is a health problem (and the watchdog restarts alertd, which then says so as above).
"""

from __future__ import annotations

import os
import uuid

from ..store import Store
from ..store.lock import StoreLock, describe


class StoreGuard:
    """Opens the daemon's store under its lock and watches that the file stays the same."""

    def __init__(self, path, log, config_path: str | None = None):
        self.path, self.log, self.config_path = str(path), log, config_path
        self.memory = self.path == ":memory:"
        self.lock = None if self.memory else StoreLock(self.path)
        self.identity: tuple[int, int] | None = None
        self.problem: str | None = None  # sticky: the file went away under the running daemon

    def open(self) -> Store:
        """Lock, open (migrate) and identify the store; StoreError with one sentence."""
        if self.memory:
            return Store(self.path, check_writable=True)
        self.lock.acquire(config=self.config_path)
        try:
            existed = os.path.exists(self.path) and os.path.getsize(self.path) > 0
            store = Store(self.path, check_writable=True)
        except BaseException:
            self.lock.release()
            raise
        store_id = store.get_kv("store_id")
        if store_id is None:
            store_id = uuid.uuid4().hex
            store.set_kv("store_id", store_id)
        self._compare(self.lock.previous, store_id, existed)
        self.lock.update(store_id=store_id)
        st = os.stat(self.path)
        self.identity = (st.st_dev, st.st_ino)
        return store

    def _compare(self, previous: dict, store_id: str, existed: bool) -> None:
        before = previous.get("store_id")
        if not before or before == store_id:
            return
        last = describe(previous).removeprefix("another alertd")
        if not existed:
            self.log.error("store_recreated", store=self.path, previous_store_id=before, store_id=store_id,
                           note=f"the store did not exist or was empty, so a new empty one was made; the lock "
                                f"file says alertd used another store here last{last}: its incidents, silences "
                                "and pending notices are not in this one. If it was deleted by mistake, stop "
                                "alertd and restore a backup (docs/operations.md)")
        else:
            self.log.warning("store_replaced", store=self.path, previous_store_id=before, store_id=store_id,
                             note=f"this is not the store alertd used here last{last} (a restored backup, "
                                  "or another store moved in)")

    def check(self) -> str | None:
        """A sentence when the store file is no longer the one opened (deleted, emptied,
        replaced); sticky until restart, logged once."""
        if self.memory or self.identity is None or self.problem:
            return self.problem
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            problem = (f"the store {self.path} was deleted while alertd runs: what it writes now is lost "
                       "at the next start; restore a backup (docs/operations.md) and restart alertd")
        except OSError:
            return None  # cannot tell (permissions, a stale mount): writes will say it
        else:
            if (st.st_dev, st.st_ino) != self.identity:
                problem = (f"the store {self.path} was replaced by another file while alertd runs; restart "
                           "alertd to use the new file (what it wrote since is in the old one)")
            elif st.st_size == 0:
                problem = (f"the store {self.path} was emptied to 0 bytes while alertd runs: it is damaged; "
                           "stop alertd, restore a backup (docs/operations.md) and start it again")
            else:
                return None
        self.problem = problem
        self.log.error("store_file_lost", store=self.path, error=problem)
        return problem

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
