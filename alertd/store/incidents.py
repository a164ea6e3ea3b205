"""Incidents keyed by fingerprint: at most one open (pending or firing) per fingerprint."""

from __future__ import annotations

import json

from ..model import Incident

OPEN_STATES = ("pending", "firing")
_JSON = ("labels", "annotations")


def _row(incident: Incident) -> dict:
    row = incident.as_dict()
    for key in _JSON:
        row[key] = json.dumps(row[key], sort_keys=True)
    if row["id"] is None:
        del row["id"]
    return row


def _incident(row: dict) -> Incident:
    data = dict(row)
    for key in _JSON:
        data[key] = json.loads(data[key] or "{}")
    return Incident.from_dict(data)


class IncidentStore:
    """Save and query incidents."""

    def __init__(self, db):
        self.db = db

    def save(self, incident: Incident) -> Incident:
        """Insert or update; sets `incident.id` on first save."""
        table = self.db["incidents"]
        if incident.id is None:
            incident.id = table.insert(_row(incident)).last_pk
        else:
            table.update(incident.id, _row(incident))
        return incident

    def open(self) -> list[Incident]:
        """Every pending or firing incident."""
        return [_incident(r) for r in self.db["incidents"].rows_where(
            "state in ('pending', 'firing')", order_by="id")]

    def list(self, include_closed: bool = False, limit: int | None = None) -> list[Incident]:
        where = None if include_closed else "state in ('pending', 'firing')"
        return [_incident(r) for r in self.db["incidents"].rows_where(
            where, order_by="id desc", limit=limit)]

    def get(self, ident) -> Incident | None:
        """By numeric id, or by fingerprint (the newest incident of it)."""
        if isinstance(ident, int) or (isinstance(ident, str) and ident.isdigit()):
            rows = list(self.db["incidents"].rows_where("id = ?", [int(ident)]))
        else:
            rows = list(self.db["incidents"].rows_where("fingerprint = ?", [ident],
                                                        order_by="id desc", limit=1))
        return _incident(rows[0]) if rows else None

    def firing_spans(self, rule: str, since: float | None = None) -> dict[str, list[tuple[float, float]]]:
        """{fingerprint: [(started_at, resolved_at or inf)]} of the rule's incidents that fired
        and were still open at or after `since`: the points a detector must not learn from."""
        since = float("-inf") if since is None else since
        spans: dict[str, list[tuple[float, float]]] = {}
        for row in self.db["incidents"].rows_where(
                "rule = ? and fired_at is not null and (resolved_at is null or resolved_at >= ?)",
                [rule, since], select="fingerprint, started_at, resolved_at"):
            end = row["resolved_at"] if row["resolved_at"] is not None else float("inf")
            spans.setdefault(row["fingerprint"], []).append((row["started_at"], end))
        return spans
