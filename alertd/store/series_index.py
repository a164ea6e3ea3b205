"""The series table: one row per series of a source, its id, and when it was last polled.

A series is a source's metric name and labels: two sources that emit the same name and
labels keep two series (migration m003 made `(source, key)` the unique identity; series
rows of older stores kept the source that first wrote them).

Ids are cached per source (a tick looks up the same keys again and again). Each series also
remembers when it was last in a poll (`last_ts`, daemon clock), so that series silent for
longer than `retention` can be dropped with their rows (`silent`, `drop`). Writing that
time for every series at every tick would cost an UPDATE per series per poll; it is
written when it moved on by more than `granularity` seconds, inside the tick's own
transaction, so what the store holds is never older than the truth by more than that.
"""

from __future__ import annotations

import json

import numpy as np

DEFAULT_GRANULARITY = 60.0


class SeriesIndex:
    """Series ids by source and key; first sample and last poll time per id."""

    def __init__(self, db):
        self.db = db
        self.granularity = DEFAULT_GRANULARITY
        self.forget()

    def forget(self) -> None:
        """Drop every cached id (after a rollback: ids handed out inside it are void)."""
        self.ids: dict[str, dict[str, int]] = {}  # source -> key -> id
        self.first: dict[int, float] = {}
        # the last poll times, one slot per series held here (ids ascending in `held`): not
        # indexed by id, since ids are never reused and a churning source would leave 16
        # bytes behind for every series it ever had
        self.held = np.empty(0, dtype=np.int64)
        self.seen = np.empty(0)  # slot -> last poll time known here
        self.saved = np.empty(0)  # slot -> last poll time the store holds
        self._polled_slots: dict[int, tuple] = {}  # id(ids) -> (ids, held, their slots)

    def of(self, source: str) -> dict[str, int]:
        return self.ids.setdefault(source, {})

    def known(self) -> int:
        """How many series this index holds the ids of (every source)."""
        return sum(len(ids) for ids in self.ids.values())

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        """The slots of `ids` (int64), adding those not held yet (times unknown: -inf)."""
        slots = np.searchsorted(self.held, ids)
        found = slots < len(self.held)
        found[found] = self.held[slots[found]] == ids[found]
        if found.all():
            return slots
        new = np.unique(ids[~found])
        if not len(self.held) or new[0] > self.held[-1]:  # the usual case: new series, higher ids
            held = np.concatenate([self.held, new])
            for name in ("seen", "saved"):
                setattr(self, name, np.concatenate([getattr(self, name), np.full(len(new), -np.inf)]))
        else:
            held = np.union1d(self.held, new)
            at = np.searchsorted(held, self.held)
            for name in ("seen", "saved"):
                grown = np.full(len(held), -np.inf)
                grown[at] = getattr(self, name)
                setattr(self, name, grown)
        self.held = held
        return np.searchsorted(held, ids)

    def load(self, keys: list[str], source: str) -> None:
        """Read the ids of `keys` of `source` that the store has into the cache."""
        known = self.of(source)
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT id, key, first_ts, last_ts FROM series WHERE source = ? "
                                   f"AND key IN ({marks})", [source, *chunk]).fetchall()
            if not rows:
                continue
            slots = self._slots(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            for (sid, key, first, last), slot in zip(rows, slots.tolist()):
                known[key] = sid
                self.first[sid] = first if first is not None else float("-inf")
                if last is not None:
                    self.saved[slot] = last
                    self.seen[slot] = max(self.seen[slot], last)

    def create(self, new: dict, source: str, now: float | None) -> None:
        """Series rows for new keys ({key: earliest Sample}), then their ids."""
        self.db["series"].insert_all(
            ({"key": k, "name": s.name, "labels": json.dumps(dict(s.labels)), "source": source,
              "first_ts": s.ts, "last_ts": now} for k, s in new.items()), ignore=True)
        self.load(list(new), source)

    def lookup(self, keys: list[str], source: str | None) -> dict[str, int]:
        """{key: id} for the keys the store has: of `source`, or (None) of any source (the
        first by id when several sources have it; reads for people, not for the engine)."""
        if source is not None:
            known = self.of(source)
            missing = [k for k in keys if k not in known]
            if missing:
                self.load(missing, source)
            return {k: known[k] for k in keys if k in known}
        out: dict[str, int] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for sid, key, first in self.db.execute(
                    f"SELECT id, key, first_ts FROM series WHERE key IN ({marks}) ORDER BY id DESC", chunk):
                out[key] = sid
                self.first[sid] = first if first is not None else float("-inf")
        return out

    def sources_of(self, key: str) -> list[str]:
        """The sources that have a series `key`."""
        return [r[0] for r in self.db.execute("SELECT source FROM series WHERE key = ? ORDER BY source", [key])]

    # -- last poll times --------------------------------------------------------------------
    def polled(self, ids: np.ndarray, now: float) -> None:
        """The series `ids` were in a poll at `now`: write the time where it moved on by more
        than `granularity` (call inside the tick's transaction)."""
        if not len(ids):
            return
        # a source's ticks hand the same id array again and again (SampleStore._ids): its slots
        # are looked up once for as long as the held ids do not change
        cached = self._polled_slots.get(id(ids))
        if cached is not None and cached[0] is ids and cached[1] is self.held:
            slots = cached[2]
        else:
            slots = self._slots(ids)
            if len(self._polled_slots) >= 64:
                self._polled_slots.clear()
            self._polled_slots[id(ids)] = (ids, self.held, slots)
        self.seen[slots] = np.maximum(self.seen[slots], now)
        moved = self.seen[slots] - self.saved[slots] > self.granularity
        if moved.any():
            stale = np.unique(ids[moved])
            # one UPDATE per run of consecutive ids (a source's series were created together:
            # usually one run), not one per series: 100,000 single-row updates took a tick
            # about 0.3 s every `granularity` seconds
            breaks = np.flatnonzero(np.diff(stale) != 1) + 1
            starts, ends = stale[np.r_[0, breaks]], stale[np.r_[breaks - 1, len(stale) - 1]]
            self.db.conn.executemany("UPDATE series SET last_ts = ? WHERE id BETWEEN ? AND ?",
                                     [(now, int(a), int(b)) for a, b in zip(starts.tolist(), ends.tolist())])
            self.saved[slots[moved]] = now

    def silent(self, before: float) -> list[tuple[int, str, str]]:
        """(id, source, key) of series whose last poll was before `before` (by what the store
        holds, plus `granularity` for the writes it may not have seen)."""
        rows = self.db.execute("SELECT id, source, key FROM series WHERE COALESCE(last_ts, first_ts) < ?",
                               [before - self.granularity]).fetchall()
        if not rows:
            return []
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        slots = np.searchsorted(self.held, ids)
        held = slots < len(self.held)
        held[held] = self.held[slots[held]] == ids[held]
        recent = np.zeros(len(rows), dtype=bool)
        recent[held] = self.seen[slots[held]] >= before - self.granularity
        return [(sid, src, key) for (sid, src, key), skip in zip(rows, recent.tolist()) if not skip]

    def drop(self, series: list[tuple[int, str, str]]) -> None:
        """Delete series rows. Their samples are older than their last poll, so pruned
        already; a point stamped ahead of its poll may outlive its row until pruned, and is
        never read (ids are never reused: the table is AUTOINCREMENT)."""
        for i in range(0, len(series), 500):
            chunk = [sid for sid, _, _ in series[i:i + 500]]
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM series WHERE id IN ({marks})", chunk)
        for sid, source, key in series:
            self.of(source).pop(key, None)
            self.first.pop(sid, None)
        if series:
            keep = ~np.isin(self.held, np.fromiter((sid for sid, _, _ in series), dtype=np.int64,
                                                   count=len(series)))
            self.held, self.seen, self.saved = self.held[keep], self.seen[keep], self.saved[keep]
