"""The SQLite store: one file, WAL, migrations, writes grouped in transactions.

`Store(path)` opens (and migrates) the database and offers one object per concern:
`samples` (series and recent samples), `incidents`, `outbox` (notifications committed before
they are sent), `models` (fitted detector models), `kv` (small named values) and
`notifier_state` (what notifiers remember between the notices of an incident, such as a
Slack thread); and, for the incident lifecycle and routing, `history`, `alert_states`,
`groups`, `silences` and `ledger` (delivery attempts). SQL lives in these modules only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

from .alert_states import AlertStateStore
from .checkpoint import AUTO_PAGES, Checkpointer
from .database import Database
from .errors import StoreError, explain, is_store_error
from .fitted_model_migrations import model_migrations
from .fitted_models import ModelStore
from .forecast_tables import forecast_migrations
from .groups import GroupStore
from .history import HistoryStore
from .history_retention import HistoryRetention, history_retention_migrations
from .incidents import IncidentStore
from .ledger import Ledger
from .migrations import migrations
from .notifier_state import NotifierState
from .notifier_state import migrations as notifier_migrations
from .outbox import Outbox
from .posted_tables import posted_migrations
from .routing_tables import routing_migrations
from .samples import SampleStore
from .silences import SilenceStore


def create_private(path: str | Path) -> None:
    """Create `path` empty with mode 0600 (owner only) unless it exists: the store holds
    incidents, labels and the fitted models the daemon unpickles, so no one else may read
    or write it. An existing file keeps its mode (the operator may have chosen it)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


class StoreHealth:
    """Whether writes commit: the monotonic time of the last commit, and since when (and
    why) writes have failed without one committing since. Health checks read it."""

    def __init__(self, path: str, clock=time.monotonic):
        self.path, self.clock = path, clock
        self.last_ok: float | None = None
        self.failing_since: float | None = None
        self.error: str | None = None

    def committed(self) -> None:
        self.last_ok, self.failing_since, self.error = self.clock(), None, None

    def failed(self, exc: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock()
        self.error = explain(exc, self.path)


class Store:
    """The daemon's durable state in one SQLite file.

    `busy_timeout`: how long a write waits for another writer's lock; `check_writable`: try
    one write on open (the daemon does), so a read-only file fails now, not at the first tick.
    A file that cannot be opened or written raises `StoreError` with one sentence.
    """

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout: float = 5.0, check_writable: bool = False):
        self.path = str(path)
        self.db = None
        self.health = StoreHealth(self.path)
        self._depth = 0  # nested atomic() blocks: only the outermost one commits
        try:
            self._open(busy_timeout)
            if check_writable:
                # SQLite opens a read-only file without a word and fails only at the first
                # write: the daemon tries one now, so a read-only store stops the start
                self.set_kv("store_opened_at", time.time())
        except (sqlite3.Error, OSError) as exc:
            if self.db is not None:
                self.db.close()
            raise StoreError(explain(exc, self.path)) from exc
        self.samples = SampleStore(self.db)
        self.models = ModelStore(self.db)
        self.incidents = IncidentStore(self.db)
        self.outbox = Outbox(self.db)
        self.notifier_state = NotifierState(self.db)
        self.history = HistoryStore(self.db)
        self.alert_states = AlertStateStore(self.db)
        self.groups = GroupStore(self.db)
        self.silences = SilenceStore(self.db)
        self.ledger = Ledger(self.db)
        self.history_retention = HistoryRetention(self.db)

    def _open(self, busy_timeout: float) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)  # SQLite gives its -wal and -shm files the same mode
            self.db = Database(self.path)
            # another writer holding the file: wait (SQLite retries) before "database is locked"
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self.db.enable_wal()
        else:
            self.db = Database(memory=True)
        self.db.execute("PRAGMA synchronous = NORMAL")
        migrations.apply(self.db)
        notifier_migrations.apply(self.db)  # after the core set, as any plugin-owned set
        routing_migrations.apply(self.db)
        posted_migrations.apply(self.db)
        model_migrations.apply(self.db)
        forecast_migrations.apply(self.db)
        history_retention_migrations.apply(self.db)  # indexes on the routing and core sets' tables

    @contextlib.contextmanager
    def atomic(self):
        """One transaction: everything inside commits together or not at all. Whether it
        committed, or failed in SQLite, is noted in `health` (for the outermost block: an inner
        one that ends well has committed nothing yet)."""
        self._depth += 1
        try:
            with self.db.atomic():
                yield
        except BaseException as exc:  # (the stores' caches of what was written are void: on_rollback)
            if is_store_error(exc):
                self.health.failed(exc)
            raise
        else:
            if self._depth == 1:
                self.health.committed()
        finally:
            self._depth -= 1

    def get_kv(self, key: str, default=None):
        row = self.db["kv"].get(key) if self._has_kv(key) else None
        return json.loads(row["value"]) if row else default

    def set_kv(self, key: str, value) -> None:
        self.db["kv"].upsert({"key": key, "value": json.dumps(value)}, pk="key")

    def _has_kv(self, key: str) -> bool:
        return self.db["kv"].count_where("key = ?", [key]) > 0

    def reader(self) -> "StoreReader":
        """A read-only view on a connection of its own, for side readers (model fits in a
        worker thread, status pages): SQLite's WAL lets it read beside the daemon's writes.
        Close it when done (it is a context manager); an in-memory store shares its one
        connection."""
        return StoreReader(self.path, self.db if self.path == ":memory:" else None)

    def checkpointer(self) -> Checkpointer | None:
        """Take WAL checkpoints off this connection's commits: from now on it checkpoints by
        itself only past AUTO_PAGES, and the caller runs the returned `Checkpointer` (see
        alertd/store/checkpoint.py). None for an in-memory store (no log)."""
        if self.path == ":memory:":
            return None
        self.db.execute(f"PRAGMA wal_autocheckpoint = {AUTO_PAGES}")
        return Checkpointer(self.path)

    def close(self) -> None:
        self.db.close()


class StoreReader:
    """Reads of the store on a second connection (see `Store.reader`)."""

    def __init__(self, path: str, shared=None, busy_timeout: float = 5.0):
        self.path = path
        self._own = shared is None
        self.db = shared if shared is not None else Database(path)
        if self._own:
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        hooks = len(self.db.on_rollback)
        self.samples = SampleStore(self.db)
        self.incidents = IncidentStore(self.db)
        self._hooks = self.db.on_rollback[hooks:]  # its stores' rollback hooks

    def close(self) -> None:
        if self._own:
            self.db.close()
        else:  # a reader per request on a shared (in-memory) connection must not pile up hooks
            for hook in self._hooks:
                self.db.on_rollback.remove(hook)

    def __enter__(self) -> "StoreReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
