"""The notification outbox: a row is committed before it is sent and marked sent after.

Statuses: `pending` (waiting or retrying), `sent`, `failed` (a permanent error, or the
receiver's deadline passed: `last_error` says which), `folded` (merged into a digest row,
or superseded by a newer notice of its group for a receiver that keeps state: `folded_into`). One row per (idempotency key, receiver, integration): enqueuing the same
notice twice is a no-op, which makes a flush that is redone after a crash harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..jsontext import dumps
from ..model import Notification


@dataclass(frozen=True)
class OutboxRow:
    """One pending delivery of a notification to one integration of a receiver."""

    id: int
    receiver: str
    integration: int
    notifier: str
    attempts: int
    notification: Notification
    idempotency_key: str = ""
    created_at: float = 0.0
    deadline_at: float | None = None


_ROW_COLS = "id, receiver, integration, notifier, attempts, payload, idempotency_key, created_at, deadline_at"


def _outbox_row(r) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], r[3], r[4] or 0, Notification.from_dict(json.loads(r[5])),
                     r[6], r[7], r[8])


_INSERT = ("INSERT OR IGNORE INTO outbox (idempotency_key, receiver, integration, notifier, kind, payload, "
           "created_at, status, attempts, next_attempt_at, group_key, deadline_at) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)")


def _rows(notification: Notification, integrations, now: float, deadline: float | None) -> list[tuple]:
    payload = dumps(notification)  # once for all the integrations (orjson writes the dataclasses)
    return [(notification.idempotency_key, notification.receiver, index, notifier, notification.kind, payload,
             now, now, notification.group_key or None, None if deadline is None else now + deadline)
            for index, notifier in integrations]


class Outbox:
    """Enqueue, fetch due rows, and record outcomes."""

    def __init__(self, db):
        self.db = db

    def enqueue(self, notification: Notification, integrations: list[tuple[int, str]], now: float,
                *, deadline: float | None = None) -> list[int]:
        """One row per (integration index, notifier type); duplicates of an idempotency key are
        ignored. Returns the ids of the rows made."""
        ids = []
        with self.db.atomic():
            for row in _rows(notification, integrations, now, deadline):
                cursor = self.db.conn.execute(_INSERT, row)
                if cursor.rowcount:
                    ids.append(cursor.lastrowid)
        return ids

    def enqueue_many(self, notices: list[tuple], now: float) -> int:
        """Many notices in one statement: (notification, [(index, notifier)], deadline) each, as
        `enqueue`; returns how many rows were made (duplicates are ignored)."""
        rows = [row for note, integrations, deadline in notices
                for row in _rows(note, integrations, now, deadline)]
        if not rows:
            return 0
        with self.db.atomic():
            before = self.db.conn.total_changes
            self.db.conn.executemany(_INSERT, rows)
            return self.db.conn.total_changes - before

    def due(self, now: float, limit: int = 100) -> list[OutboxRow]:
        return [_outbox_row(r) for r in self.db.execute(
            f"SELECT {_ROW_COLS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, id LIMIT ?", [now, limit])]

    def group_heads(self, receiver: str, integration: int) -> dict[str, tuple[int, float]]:
        """The oldest pending row of each alert group of an integration: group key ->
        (row id, next attempt); a group's later notices wait for it (delivery in order)."""
        # SQLite takes the bare column next_attempt_at from the row holding MIN(id)
        return {g: (i, at) for g, i, at in self.db.execute(
            "SELECT group_key, MIN(id), next_attempt_at FROM outbox WHERE status = 'pending' "
            "AND receiver = ? AND integration = ? AND group_key IS NOT NULL GROUP BY group_key",
            [receiver, integration])}

    def get(self, row_id: int) -> OutboxRow | None:
        r = self.db.execute(f"SELECT {_ROW_COLS} FROM outbox WHERE id = ?", [row_id]).fetchone()
        return _outbox_row(r) if r else None

    def find(self, idempotency_key: str, receiver: str, integration: int) -> int | None:
        row = self.db.execute("SELECT id FROM outbox WHERE idempotency_key = ? AND receiver = ? AND integration = ?",
                              [idempotency_key, receiver, integration]).fetchone()
        return row[0] if row else None

    def next_due_at(self) -> float | None:
        row = self.db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'").fetchone()
        return row[0]

    def mark_sent(self, row_id: int, now: float, answer: str) -> None:
        self._set(row_id, status="sent", sent_at=now, answer=answer[:500])

    def mark_retry(self, row_id: int, next_at: float, error: str) -> None:
        self._set(row_id, next_attempt_at=next_at, last_error=error[:500])

    def mark_failed(self, row_id: int, now: float, error: str) -> None:
        self._set(row_id, status="failed", last_error=error[:500])

    def postpone(self, row_ids: list[int], next_at: float) -> None:
        """Move rows to a later time without counting an attempt (rate limit)."""
        with self.db.atomic():
            self.db.conn.executemany("UPDATE outbox SET next_attempt_at = ? WHERE id = ?",
                                     [(next_at, i) for i in row_ids])

    def shift_pending(self, delta: float) -> None:
        """Move the next attempt of every pending row by `delta` seconds (a clock step)."""
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET next_attempt_at = next_attempt_at + ? WHERE status = 'pending'",
                            [delta])

    def fold(self, row_ids: list[int], into: int) -> None:
        """Mark rows as folded into the digest row `into`."""
        with self.db.atomic():
            self.db.conn.executemany("UPDATE outbox SET status = 'folded', folded_into = ? WHERE id = ?",
                                     [(into, i) for i in row_ids])

    def supersede(self, row_ids: list[int], into: int, notification: Notification) -> None:
        """Fold rows into the newer row `into` of their group, which now carries
        `notification` (the latest state of all their alerts) and the most attempts of any."""
        with self.db.atomic():
            attempts = max([r[0] or 0 for r in self.db.execute(
                f"SELECT attempts FROM outbox WHERE id IN ({','.join('?' * (len(row_ids) + 1))})",
                [*row_ids, into])], default=0)
            self.db.execute("UPDATE outbox SET payload = ?, attempts = ? WHERE id = ?",
                            [dumps(notification), attempts, into])
            self.db.conn.executemany("UPDATE outbox SET status = 'folded', folded_into = ? WHERE id = ?",
                                     [(into, i) for i in row_ids])

    def _set(self, row_id: int, **values) -> None:
        with self.db.atomic():
            sets = ", ".join(f"{k} = ?" for k in values)
            self.db.execute(f"UPDATE outbox SET {sets}, attempts = COALESCE(attempts, 0) + 1 WHERE id = ?",
                            [*values.values(), row_id])

    def pending_count(self) -> int:
        return self.db["outbox"].count_where("status = 'pending'")

    def rows(self, status: str | None = None, *, limit: int | None = None, newest_first: bool = False,
             statuses: tuple[str, ...] | None = None) -> list[dict]:
        """Raw rows (for the CLI and tests), oldest first unless `newest_first`."""
        if statuses:
            where, params = f"status IN ({','.join('?' * len(statuses))})", list(statuses)
        elif status:
            where, params = "status = ?", [status]
        else:
            where, params = None, []
        return list(self.db["outbox"].rows_where(where, params, limit=limit,
                                                 order_by="id desc" if newest_first else "id"))
