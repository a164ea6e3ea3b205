"""Per-fingerprint evaluation history (for flap detection), kept while a series is tracked.

With flap detection on, every evaluation of a tracked series changes its row: a series this
store knows to have a row is updated in place (an UPDATE by key: about half the cost of
INSERT OR REPLACE, which deletes the row and inserts it again); which rows exist is learnt
from `load` and from the writes, and forgotten on any rollback.
"""

from __future__ import annotations

_REPLACE = ("INSERT OR REPLACE INTO alert_states (fingerprint, rule, history, evaluations, flapping, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?)")
_UPDATE = "UPDATE alert_states SET history = ?, evaluations = ?, flapping = ?, updated_at = ? WHERE fingerprint = ?"


class AlertStateStore:
    """Load, upsert and drop alert states (batched)."""

    def __init__(self, db):
        self.db = db
        self._stored: set[str] = set()  # fingerprints known to have a row
        db.on_rollback.append(self._stored.clear)

    def load(self) -> list[tuple]:
        """(fingerprint, rule, history, evaluations, flapping, updated_at) of every tracked series
        (`updated_at`: the data time of the evaluation that last changed the state, which is
        its last evaluation unless the history was all one state)."""
        rows = list(self.db.execute(
            "SELECT fingerprint, rule, history, evaluations, flapping, updated_at FROM alert_states"))
        self._stored.update(r[0] for r in rows)
        return rows

    def write(self, upserts: list[tuple], drops: list[str]) -> None:
        """Upsert (fingerprint, rule, history, evaluations, flapping, evaluated_at) rows (the
        evaluation's data time, which flap detection measures gaps against, in `updated_at`);
        delete dropped ones."""
        if not upserts and not drops:
            return
        stored = self._stored
        updates = [(h, e, f, at, fp) for fp, _, h, e, f, at in upserts if fp in stored]
        inserts = [u for u in upserts if u[0] not in stored]
        with self.db.atomic():
            if updates:
                self.db.conn.executemany(_UPDATE, updates)
            if inserts:
                self.db.conn.executemany(_REPLACE, inserts)
            if drops:
                self.db.conn.executemany("DELETE FROM alert_states WHERE fingerprint = ?",
                                         [(d,) for d in drops])
        stored.update(u[0] for u in inserts)
        stored.difference_update(drops)
