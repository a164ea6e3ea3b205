"""The store's connection: sqlite_utils' `Database` with a cheaper nested `atomic()`.

sqlite_utils names each nested savepoint afresh (`SAVEPOINT sqlite_utils_<random hex>`), so
SQLite compiles two new statements for every nested block: about 18 us, and the store's
writers nest one block per batch call, hundreds a tick in an alert storm. Savepoints may
share a name: `ROLLBACK TO` and `RELEASE` act on the innermost one of that name, which for
strictly nested blocks is the block's own, and the statements stay in the statement cache.

`on_rollback` holds callables run after any block rolls back: caches of what was written
(the incidents' last written lifecycle) must not outlive the rows they describe.
"""

from __future__ import annotations

import contextlib

import sqlite_utils

_NESTED = "alertd_nested"


class Database(sqlite_utils.Database):
    """A sqlite_utils Database whose nested `atomic()` blocks reuse one savepoint name."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_rollback: list = []

    def _rolled_back(self) -> None:
        for hook in self.on_rollback:
            hook()

    @contextlib.contextmanager
    def atomic(self):
        conn = self.conn
        if not conn.in_transaction:
            try:
                with super().atomic():
                    yield self
            except BaseException:  # the block's error, or its COMMIT's: nothing of it is written
                self._rolled_back()
                raise
            return
        conn.execute(f"SAVEPOINT {_NESTED}")
        try:
            yield self
        except BaseException:
            # an error such as a RAISE(ROLLBACK) trigger may have ended the whole transaction
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO SAVEPOINT {_NESTED}")
                conn.execute(f"RELEASE SAVEPOINT {_NESTED}")
            self._rolled_back()
            raise
        else:
            conn.execute(f"RELEASE SAVEPOINT {_NESTED}")
