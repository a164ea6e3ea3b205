"""Incident history: every event of an incident, in order (fired, acknowledged, notified, ...)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

EVENTS = ("pending", "fired", "peak", "flapping", "settled", "no_data", "resolved", "acknowledged",
          "unacknowledged", "silenced", "unsilenced", "inhibited", "uninhibited", "notified",
          "suppressed", "silence_added", "silence_extended", "silence_expired")


@dataclass(frozen=True)
class Event:
    """One entry of an incident's history; `detail` is a small JSON-able mapping."""

    incident_id: int | None
    fingerprint: str
    at: float
    event: str
    detail: dict = field(default_factory=dict)
    actor: str | None = None


def _detail(detail) -> str | None:
    """JSON of an event's detail; a detail shared by many events is encoded once."""
    if not detail:
        return None
    if isinstance(detail, SharedDetail):
        if detail.encoded is None:
            detail.encoded = json.dumps(detail, sort_keys=True)
        return detail.encoded
    return json.dumps(detail, sort_keys=True)


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
                [(e.incident_id, e.fingerprint, e.at, e.event, _detail(e.detail), e.actor) for e in events])

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
