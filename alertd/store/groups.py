"""Alert groups in the store: their timers, their members and the notification log.

A group is Alertmanager's aggregation group: one route, one set of group-by label values.
`next_flush_at` is its timer (group_wait after creation, then group_interval after each
flush); members are the incidents in it by fingerprint; the notification log remembers, per
integration of the receiver, which fingerprints the last notice told as firing, resolved and
flapping, and when. All of it lives here so a restart or a reload keeps the timers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from ..jsontext import dumps


@dataclass(frozen=True)
class GroupRow:
    key: str
    route_id: str
    receiver: str
    labels: dict
    created_at: float
    next_flush_at: float
    last_flush_at: float | None
    flushes: int
    changed: bool = True  # members changed since the last flush


class Member(NamedTuple):
    """One incident in a group (a tuple: groups are read in bulk)."""

    fingerprint: str
    incident_id: int
    state: str  # firing | resolved | flapping
    updated_at: float


@dataclass(frozen=True)
class LogEntry:
    """What the last notice of a group to one integration said."""

    firing: frozenset[str]
    resolved: frozenset[str]
    flapping: frozenset[str]
    notified_at: float


def _group(r) -> GroupRow:
    return GroupRow(r[0], r[1], r[2], json.loads(r[3] or "{}"), r[4], r[5], r[6], r[7] or 0, bool(r[8]))


_GROUP_COLS = "key, route_id, receiver, labels, created_at, next_flush_at, last_flush_at, flushes, changed"


class GroupStore:
    """Reads and batched writes of groups, members and the notification log."""

    def __init__(self, db):
        self.db = db

    def ensure(self, rows: list[tuple]) -> None:
        """Create groups that do not exist: (key, route_id, receiver, labels, created_at, next_flush_at)."""
        if rows:
            with self.db.atomic():
                self.db.conn.executemany(
                    "INSERT OR IGNORE INTO route_groups (key, route_id, receiver, labels, created_at, "
                    "next_flush_at, flushes, changed) VALUES (?, ?, ?, ?, ?, ?, 0, 1)", rows)
                self.db.conn.executemany("UPDATE route_groups SET changed = 1 WHERE key = ?",
                                         [(r[0],) for r in rows])

    def hurry(self, keys: list[str], now: float, flushed_since: float | None = None) -> None:
        """Flush these groups now if they were never flushed (their first notice is due), or,
        with `flushed_since`, if they were flushed at or after it (a poll's later slice found
        more members of a group its earlier slice notified)."""
        flushed, extra = ("last_flush_at IS NULL", ()) if flushed_since is None else ("last_flush_at >= ?",
                                                                                      (flushed_since,))
        with self.db.atomic():
            self.db.conn.executemany(
                f"UPDATE route_groups SET next_flush_at = ? WHERE key = ? AND {flushed} AND next_flush_at > ?",
                [(now, key, *extra, now) for key in keys])

    def put_members(self, rows: list[tuple]) -> None:
        """Insert or replace members: (group_key, fingerprint, incident_id, state, updated_at).

        A member is one incident: when an alert resolves and fires again before the group is
        flushed, both incidents are members until the flush tells (or accounts for) them."""
        if rows:
            with self.db.atomic():
                self.db.conn.executemany(
                    "INSERT OR REPLACE INTO group_members (group_key, fingerprint, incident_id, state, "
                    "updated_at) VALUES (?, ?, ?, ?, ?)", rows)

    def due(self, now: float, limit: int = 5000) -> list[GroupRow]:
        return [_group(r) for r in self.db.execute(
            f"SELECT {_GROUP_COLS} FROM route_groups WHERE next_flush_at <= ? "
            "ORDER BY next_flush_at LIMIT ?", [now, limit])]

    def get(self, key: str) -> GroupRow | None:
        row = self.db.execute(f"SELECT {_GROUP_COLS} FROM route_groups WHERE key = ?", [key]).fetchone()
        return _group(row) if row else None

    def all(self) -> list[GroupRow]:
        return [_group(r) for r in self.db.execute(
            f"SELECT {_GROUP_COLS} FROM route_groups ORDER BY created_at, key")]

    def next_flush_at(self) -> float | None:
        return self.db.execute("SELECT MIN(next_flush_at) FROM route_groups").fetchone()[0]

    def shift_timers(self, delta: float) -> None:
        """Move every group timer and last-notified time by `delta` seconds (a clock step)."""
        with self.db.atomic():
            self.db.execute("UPDATE route_groups SET next_flush_at = next_flush_at + ?", [delta])
            self.db.execute("UPDATE notify_log SET notified_at = notified_at + ?", [delta])

    def members(self, keys: list[str]) -> dict[str, list[Member]]:
        out: dict[str, list[Member]] = {k: [] for k in keys}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, fp, incident_id, state, at in self.db.execute(
                    f"SELECT group_key, fingerprint, incident_id, state, updated_at FROM group_members "
                    f"WHERE group_key IN ({marks}) ORDER BY group_key, fingerprint", chunk):
                out[key].append(Member(fp, incident_id, state, at))
        return out

    def summary(self, keys: list[str]) -> dict[str, tuple[int, int, float | None]]:
        """Per group: (members, resolved members, oldest notice time of any integration),
        enough to tell a group that needs no flush without loading it."""
        out: dict[str, list] = {k: [0, 0, None] for k in keys}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, n, resolved in self.db.execute(
                    f"SELECT group_key, COUNT(*), SUM(state = 'resolved') FROM group_members "
                    f"WHERE group_key IN ({marks}) GROUP BY group_key", chunk):
                out[key][0], out[key][1] = n, resolved or 0
            for key, oldest in self.db.execute(
                    f"SELECT group_key, MIN(notified_at) FROM notify_log WHERE group_key IN ({marks}) "
                    "GROUP BY group_key", chunk):
                out[key][2] = oldest
        return {k: tuple(v) for k, v in out.items()}

    def log_entries(self, keys: list[str]) -> dict[tuple[str, int], LogEntry]:
        out = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, integ, firing, resolved, flapping, at in self.db.execute(
                    f"SELECT group_key, integration, firing, resolved, flapping, notified_at "
                    f"FROM notify_log WHERE group_key IN ({marks})", chunk):
                out[(key, integ)] = LogEntry(frozenset(json.loads(firing or "[]")),
                                             frozenset(json.loads(resolved or "[]")),
                                             frozenset(json.loads(flapping or "[]")), at)
        return out

    def write_flush(self, *, timers: list[tuple], log: list[tuple], drop_members: list[tuple],
                    drop_groups: list[str], reset_log: list[str] = ()) -> None:
        """Record one flush cycle: timers (next, last, flushes, receiver, key), log rows
        (key, integration, firing, resolved, flapping, at), resolved members to drop
        (key, fingerprint, incident_id), empty groups to delete, and groups whose log starts
        afresh (their route's receiver changed)."""
        with self.db.atomic():
            conn = self.db.conn
            if timers:
                conn.executemany("UPDATE route_groups SET next_flush_at = ?, last_flush_at = ?, "
                                 "flushes = ?, receiver = ?, changed = 0 WHERE key = ?", timers)
            if reset_log:
                conn.executemany("DELETE FROM notify_log WHERE group_key = ?", [(k,) for k in reset_log])
            if log:
                conn.executemany(
                    "INSERT OR REPLACE INTO notify_log (group_key, integration, firing, resolved, "
                    "flapping, notified_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(k, i, dumps(sorted(f)), dumps(sorted(r)), dumps(sorted(fl)), at)
                     for k, i, f, r, fl, at in log])
            if drop_members:
                conn.executemany("DELETE FROM group_members WHERE group_key = ? AND fingerprint = ? "
                                 "AND incident_id = ? AND state = 'resolved'", drop_members)
            for key in drop_groups:
                left = conn.execute("SELECT 1 FROM group_members WHERE group_key = ? LIMIT 1", [key]).fetchone()
                if left is None:
                    conn.execute("DELETE FROM route_groups WHERE key = ?", [key])
                    conn.execute("DELETE FROM notify_log WHERE group_key = ?", [key])

    def delete_group(self, key: str) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM group_members WHERE group_key = ?", [key])
            self.db.execute("DELETE FROM route_groups WHERE key = ?", [key])
            self.db.execute("DELETE FROM notify_log WHERE group_key = ?", [key])

    def resolve_member(self, fingerprint: str, incident_id: int, at: float) -> int:
        """Mark an incident resolved in every group it is in (a manual resolve)."""
        with self.db.atomic():
            self.db.execute("UPDATE route_groups SET changed = 1 WHERE key IN (SELECT group_key FROM "
                            "group_members WHERE fingerprint = ? AND incident_id = ?)", [fingerprint, incident_id])
            return self.db.execute(
                "UPDATE group_members SET state = 'resolved', updated_at = ? "
                "WHERE fingerprint = ? AND incident_id = ?", [at, fingerprint, incident_id]).rowcount

    def groups_of(self, fingerprint: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT group_key FROM group_members WHERE fingerprint = ?", [fingerprint])]
