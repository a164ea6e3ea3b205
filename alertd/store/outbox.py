"""The notification outbox: a row is committed before it is sent and marked sent after."""

from __future__ import annotations

import json
from dataclasses import dataclass

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


class Outbox:
    """Enqueue, fetch due rows, and record outcomes."""

    def __init__(self, db):
        self.db = db

    def enqueue(self, notification: Notification, integrations: list[tuple[int, str]], now: float) -> list[int]:
        """One row per (integration index, notifier type); duplicates of an idempotency key are ignored."""
        payload = json.dumps(notification.as_dict())
        ids = []
        for index, notifier in integrations:
            table = self.db["outbox"].insert({
                "idempotency_key": notification.idempotency_key, "receiver": notification.receiver,
                "integration": index, "notifier": notifier, "kind": notification.kind,
                "payload": payload, "created_at": now, "status": "pending", "attempts": 0,
                "next_attempt_at": now}, ignore=True)
            if table.last_rowid:
                ids.append(table.last_rowid)
        return ids

    def due(self, now: float, limit: int = 100) -> list[OutboxRow]:
        rows = self.db["outbox"].rows_where("status = 'pending' AND next_attempt_at <= ?", [now],
                                            order_by="next_attempt_at, id", limit=limit)
        return [OutboxRow(r["id"], r["receiver"], r["integration"], r["notifier"], r["attempts"],
                          Notification.from_dict(json.loads(r["payload"]))) for r in rows]

    def next_due_at(self) -> float | None:
        row = self.db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'").fetchone()
        return row[0]

    def mark_sent(self, row_id: int, now: float, answer: str) -> None:
        self.db["outbox"].update(row_id, {"status": "sent", "sent_at": now, "answer": answer[:500],
                                          "attempts": self._attempts(row_id) + 1})

    def mark_retry(self, row_id: int, next_at: float, error: str) -> None:
        self.db["outbox"].update(row_id, {"next_attempt_at": next_at, "last_error": error[:500],
                                          "attempts": self._attempts(row_id) + 1})

    def mark_failed(self, row_id: int, now: float, error: str) -> None:
        self.db["outbox"].update(row_id, {"status": "failed", "last_error": error[:500],
                                          "attempts": self._attempts(row_id) + 1})

    def _attempts(self, row_id: int) -> int:
        return self.db["outbox"].get(row_id)["attempts"] or 0

    def pending_count(self) -> int:
        return self.db["outbox"].count_where("status = 'pending'")

    def rows(self, status: str | None = None) -> list[dict]:
        where = "status = ?" if status else None
        return list(self.db["outbox"].rows_where(where, [status] if status else [], order_by="id"))

    def for_incident(self, fingerprint: str, incident_id: int | None) -> list[dict]:
        """The deliveries of an incident's notifications (their idempotency keys start with
        `fingerprint:id:`), oldest first."""
        prefix = f"{fingerprint}:{incident_id}:"
        return list(self.db["outbox"].rows_where("substr(idempotency_key, 1, ?) = ?",
                                                 [len(prefix), prefix], order_by="id"))
