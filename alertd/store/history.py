"""Incident history: every event of an incident, in order (fired, acknowledged, notified, ...)."""

from __future__ import annotations

import json

from ..jsontext import dumps
from typing import NamedTuple

EVENTS = ("pending", "fired", "peak", "flapping", "settled", "no_data", "resolved", "acknowledged",
          "unacknowledged", "silenced", "unsilenced", "inhibited", "uninhibited", "notified",
          "suppressed", "silence_added", "silence_extended", "silence_expired")


class Event(NamedTuple):
    """One entry of an incident's history; `detail` is a small JSON-able mapping (a tuple:
    a storm makes thousands a tick, and a frozen dataclass is built four times slower)."""

    incident_id: int | None
    fingerprint: str
    at: float
    event: str
    detail: dict = {}  # never changed in place: events are written, not edited
    actor: str | None = None


def _detail(detail) -> str | None:
    """JSON of an event's detail; a detail shared by many events is encoded once."""
    if not detail:
        return None
    if isinstance(detail, SharedDetail):
        if detail.encoded is None:
            detail.encoded = dumps(detail, sort_keys=True)
        return detail.encoded
    return dumps(detail, sort_keys=True)


class SharedDetail(dict):
    """An event detail used by many events (e.g. one notice's incidents): encoded once."""

    encoded: str | None = None


class HistoryStore:
    """Append events (batched) and read an incident's history."""

    def __init__(self, db):
        self.db = db

    def add(self, events: list[Event]) -> None:
        if not events:
            return
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT INTO incident_history (incident_id, fingerprint, at, event, detail, actor) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(i, fp, at, event, _detail(detail), actor) for i, fp, at, event, detail, actor in events])

    def of(self, incident_id: int) -> list[Event]:
        """The events of one incident, oldest first."""
        return [Event(r["incident_id"], r["fingerprint"], r["at"], r["event"],
                      json.loads(r["detail"]) if r["detail"] else {}, r["actor"])
                for r in self.db.query("SELECT * FROM incident_history WHERE incident_id = ? "
                                       "ORDER BY at, id", [incident_id])]

    def events_of_kind(self, event: str) -> list[Event]:
        return [Event(r["incident_id"], r["fingerprint"], r["at"], r["event"],
                      json.loads(r["detail"]) if r["detail"] else {}, r["actor"])
                for r in self.db.query("SELECT * FROM incident_history WHERE event = ? ORDER BY id",
                                       [event])]
