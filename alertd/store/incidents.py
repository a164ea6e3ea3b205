"""Incidents keyed by fingerprint: at most one open (pending or firing) per fingerprint.

Writers own disjoint columns, so the daemon, the CLI and the API never overwrite each
other's work: the alert state machine writes the lifecycle columns (`save_many`), the router
writes silencing/inhibition/notification marks (`mark`), acknowledgement and manual resolve
are written by `alertd.incidents.actions`. Lifecycle updates never touch an incident that is
already resolved, so a manual resolve cannot be undone by a tick that was under way.

An open incident is updated at every evaluation of its series (its count, last value,
score...), so `save_many` writes only the lifecycle columns that changed since this store
last wrote them: in a storm that is two to eight columns of thousands of rows a tick, and
never the indexed `state` unless it changed (which halves the cost of a row). What was
written is remembered per open incident and forgotten on any rollback.
"""

from __future__ import annotations

import json
import operator
from functools import lru_cache
from itertools import compress

from ..jsontext import dumps
from ..model import Incident

OPEN_STATES = ("pending", "firing")
# A kv counter bumped by every action on incidents outside the state machine (ack, resolve):
# the daemon's state machine and router re-read what they hold when it changes.
ACTIONS_KEY = "incident_actions"
_JSON = ("labels", "annotations", "silenced_by", "inhibited_by")
# Columns of the state machine, updated on every evaluation of an open incident.
LIFECYCLE = ("state", "fired_at", "resolved_at", "count", "last_value", "peak_score", "reason",
             "ok_since", "flapping", "cause", "last_anomalous_at", "resolution",
             "expected_low", "expected_high", "score", "threshold", "ends_at", "generator_url",
             "crossing_at")


_lifecycle = operator.attrgetter(*LIFECYCLE)  # flapping is a bool: sqlite3 stores it as 0/1
_STATE = LIFECYCLE.index("state")
_ALL_CHANGED = (True,) * len(LIFECYCLE)


@lru_cache(maxsize=512)
def _update_sql(changed: tuple[bool, ...]) -> str:
    """The UPDATE of the lifecycle columns flagged in `changed` (of an open incident only)."""
    sets = ", ".join(f"{c} = ?" for c in compress(LIFECYCLE, changed))
    return f"UPDATE incidents SET {sets} WHERE id = ? AND state IN ('pending', 'firing')"


def _row(incident: Incident) -> dict:
    row = incident.as_dict()
    for key in _JSON:
        row[key] = dumps(row[key], sort_keys=True) if row[key] else ("[]" if key in ("silenced_by", "inhibited_by") else "{}")
    row["flapping"] = int(bool(row["flapping"]))
    if row["id"] is None:
        del row["id"]
    return row


_EMPTY = {None: None, "": None, "{}": {}, "[]": []}


def to_incident(row: dict) -> Incident:
    """An Incident from a row of the incidents table."""
    data = dict(row)
    for key in _JSON:
        value = data.get(key)
        if value in _EMPTY:
            data[key] = {} if key in ("labels", "annotations") else []
        else:
            data[key] = json.loads(value)
    data["flapping"] = bool(data.get("flapping"))
    data["cause"] = data.get("cause") or "anomaly"
    return Incident.from_dict(data)


class IncidentStore:
    """Save and query incidents."""

    def __init__(self, db):
        self.db = db
        self._columns: list[str] | None = None
        # id -> the lifecycle values last written, for open incidents; void after a rollback
        self._written: dict[int, tuple] = {}
        db.on_rollback.append(self._written.clear)

    def _insert(self, incident: Incident) -> None:
        row = _row(incident)
        if self._columns is None:
            self._columns = [c for c in row]
        cols = self._columns
        cursor = self.db.conn.execute(
            f"INSERT INTO incidents ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [row[c] for c in cols])
        incident.id = cursor.lastrowid

    def _insert_many(self, incidents: list[Incident]) -> None:
        """One executemany per set of non-null columns (a new incident has a dozen of its
        thirty-odd columns empty, and leaving them to their NULL default halves the cost of
        a row), with ids assigned here (inside the caller's transaction)."""
        base = self.db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM incidents").fetchone()[0]
        by_columns: dict[tuple, list] = {}
        for k, incident in enumerate(incidents, start=1):
            incident.id = base + k
            row = _row(incident)
            filled = tuple(c for c, v in row.items() if v is not None)
            by_columns.setdefault(filled, []).append([row[c] for c in filled])
        for cols, values in by_columns.items():
            self.db.conn.executemany(
                f"INSERT INTO incidents ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values)

    def save(self, incident: Incident) -> Incident:
        """Insert or update one incident; sets `incident.id` on first save."""
        return self.save_many([incident])[0]

    def save_many(self, incidents: list[Incident]) -> list[Incident]:
        """Insert new incidents (setting their ids) and update the lifecycle of the others
        (only the columns that changed since they were last written here)."""
        staged: dict[int, tuple] = {}
        with self.db.atomic():
            new = [i for i in incidents if i.id is None]
            updates = [i for i in incidents if i.id is not None]
            if len(new) > 1:
                self._insert_many(new)
            elif new:
                self._insert(new[0])
            for incident in new:
                staged[incident.id] = _lifecycle(incident)
            if updates:
                self._update(updates, staged)
        written = self._written
        for incident_id, values in staged.items():
            if values[_STATE] in OPEN_STATES:
                written[incident_id] = values
            else:
                written.pop(incident_id, None)
        return incidents

    def _update(self, incidents: list[Incident], staged: dict[int, tuple]) -> None:
        """One executemany per set of changed columns; the values go to `staged`."""
        written, by_changes = self._written, {}
        for incident in incidents:
            values = _lifecycle(incident)
            old = written.get(incident.id)
            if old is None:
                changed = _ALL_CHANGED
            elif old == values:
                continue
            else:
                changed = tuple(map(operator.ne, values, old))
            by_changes.setdefault(changed, []).append((*compress(values, changed), incident.id))
            staged[incident.id] = values
        for changed, rows in by_changes.items():
            self.db.conn.executemany(_update_sql(changed), rows)

    def open(self) -> list[Incident]:
        """Every pending or firing incident."""
        return [to_incident(r) for r in self.db["incidents"].rows_where(
            "state in ('pending', 'firing')", order_by="id")]

    def list(self, include_closed: bool = False, limit: int | None = None, *,
             state: str | None = None, rule: str | None = None) -> list[Incident]:
        """Newest first: open ones (or all), optionally of one state or rule."""
        clauses, params = [], []
        if state:
            clauses.append("state = ?")
            params.append(state)
        elif not include_closed:
            clauses.append("state in ('pending', 'firing')")
        if rule:
            clauses.append("rule = ?")
            params.append(rule)
        where = " AND ".join(clauses) or None
        return [to_incident(r) for r in self.db["incidents"].rows_where(
            where, params, order_by="id desc", limit=limit)]

    def get(self, ident) -> Incident | None:
        """By numeric id, or by fingerprint (the newest incident of it)."""
        if isinstance(ident, int) or (isinstance(ident, str) and ident.isascii() and ident.isdigit()):
            if int(ident) >= 2 ** 63:  # beyond SQLite's integers: no such id
                return None
            rows = list(self.db["incidents"].rows_where("id = ?", [int(ident)]))
        else:
            rows = list(self.db["incidents"].rows_where("fingerprint = ?", [str(ident)],
                                                        order_by="id desc", limit=1))
        return to_incident(rows[0]) if rows else None

    def by_ids(self, ids) -> dict[int, Incident]:
        """Incidents by id, fetched in chunks."""
        ids, out = list(ids), {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            cursor = self.db.conn.execute(f"SELECT * FROM incidents WHERE id IN ({marks})", chunk)
            columns = [d[0] for d in cursor.description]
            for values in cursor:
                row = dict(zip(columns, values))
                out[row["id"]] = to_incident(row)
        return out

    def resolved_among(self, ids) -> set[int]:
        """Which of these ids are resolved in the store (e.g. by a manual resolve)."""
        ids, out = list(ids), set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(r[0] for r in self.db.execute(
                f"SELECT id FROM incidents WHERE id IN ({marks}) AND state = 'resolved'", chunk))
        return out

    def firing(self) -> list[tuple[str, dict, str, str]]:
        """(fingerprint, labels, rule, severity) of every firing incident (for inhibition)."""
        return [(fp, json.loads(labels or "{}"), rule, severity) for fp, labels, rule, severity in
                self.db.execute("SELECT fingerprint, labels, rule, severity FROM incidents "
                                "WHERE state = 'firing'")]

    def open_labels(self) -> list[tuple[int, dict, str, str]]:
        """(id, labels, rule, severity) of every open incident."""
        return [(i, json.loads(labels or "{}"), rule, severity) for i, labels, rule, severity in
                self.db.execute("SELECT id, labels, rule, severity FROM incidents "
                                "WHERE state IN ('pending', 'firing')")]

    def summaries(self, *, open_only: bool = True, state: str | None = None, rule: str | None = None,
                  limit: int | None = None) -> list[tuple]:
        """(id, rule, labels, severity, state, started_at) of open incidents (or all, newest
        first): enough to filter and sort a list page before loading the rows it shows."""
        clauses, params = [], []
        if state:
            clauses.append("state = ?")
            params.append(state)
        elif open_only:
            clauses.append("state IN ('pending', 'firing')")
        if rule:
            clauses.append("rule = ?")
            params.append(rule)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        cursor = self.db.conn.execute(f"SELECT id, rule, labels, severity, state, started_at FROM incidents{where} "
                                      f"ORDER BY id DESC{tail}", params)
        return [(i, r, json.loads(labels or "{}"), sev, st, started) for i, r, labels, sev, st, started in cursor]

    def spans_of(self, fingerprints) -> dict[str, list[tuple]]:
        """{fingerprint: [(started_at, resolved_at, state)]} of these fingerprints' incidents."""
        fps, out = list(fingerprints), {}
        for i in range(0, len(fps), 500):
            chunk = fps[i:i + 500]
            cursor = self.db.conn.execute(
                f"SELECT fingerprint, started_at, resolved_at, state FROM incidents WHERE fingerprint IN "
                f"({','.join('?' * len(chunk))}) ORDER BY id", chunk)
            for fp, started, resolved, state in cursor:
                out.setdefault(fp, []).append((started, resolved, state))
        return out

    def resolve_by_hand(self, incident_id: int, now: float, by: str) -> None:
        """Resolve an open incident by hand (`alertd incidents resolve`, the API)."""
        self.db.execute(
            "UPDATE incidents SET state = 'resolved', resolved_at = ?, resolution = 'manual', "
            "resolved_by = ?, flapping = 0 WHERE id = ? AND state IN ('pending', 'firing')",
            [now, by, incident_id])
        self._written.pop(incident_id, None)  # never saved by the state machine again: not kept

    def mark(self, incident_id: int, **values) -> None:
        """Set routing marks (silenced_by, inhibited_by, notified_at, suppressed, ack columns)."""
        self.mark_many({incident_id: values})

    def mark_many(self, marks: dict[int, dict]) -> None:
        """Set marks on many incidents: one executemany per set of columns."""
        by_columns: dict[tuple, list] = {}
        for incident_id, values in marks.items():
            columns = tuple(sorted(values))
            row = [dumps(values[c]) if c in _JSON else values[c] for c in columns]
            by_columns.setdefault(columns, []).append((*row, incident_id))
        with self.db.atomic():
            for columns, rows in by_columns.items():
                sets = ", ".join(f"{c} = ?" for c in columns)
                self.db.conn.executemany(f"UPDATE incidents SET {sets} WHERE id = ?", rows)

    def rule_names(self) -> list[str]:
        """Every rule that has had an incident."""
        return [r[0] for r in self.db.execute("SELECT DISTINCT rule FROM incidents ORDER BY rule")]

    def count_open(self) -> int:
        return self.db["incidents"].count_where("state in ('pending', 'firing')")

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
