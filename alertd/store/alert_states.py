"""Per-fingerprint evaluation history (for flap detection), kept while a series is tracked."""

from __future__ import annotations


class AlertStateStore:
    """Load, upsert and drop alert states (batched)."""

    def __init__(self, db):
        self.db = db

    def load(self) -> list[tuple]:
        """(fingerprint, rule, history, evaluations, flapping, updated_at) of every tracked series
        (`updated_at`: when the state last changed, which is its last evaluation unless the
        history was all one state)."""
        return list(self.db.execute(
            "SELECT fingerprint, rule, history, evaluations, flapping, updated_at FROM alert_states"))

    def write(self, upserts: list[tuple], drops: list[str], now: float) -> None:
        """Upsert (fingerprint, rule, history, evaluations, flapping) rows; delete dropped ones."""
        if not upserts and not drops:
            return
        with self.db.atomic():
            if upserts:
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO alert_states (fingerprint, rule, history, evaluations, "
                    "flapping, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(*u, now) for u in upserts])
            if drops:
                self.db.conn.executemany("DELETE FROM alert_states WHERE fingerprint = ?",
                                         [(d,) for d in drops])
