"""Series and their recent samples (bounded retention).

A tick's samples go to the head, the `samples` table keyed by (ts, series_id): appends are
cheap and sequential, and commit with the tick. The prune job seals the head's complete time
windows into compressed per-series chunks (alertd/store/sample_chunks.py: about 3 bytes a
sample instead of 29) and drops whole chunk windows past retention; reads (`recent`,
`histories`) merge chunks and head, so callers never see the difference, and trim points
older than the last prune's cutoff (a chunk window is dropped only once all of it is).
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from ..model import Labels, Sample
from .sample_chunks import MAX_SPAN, SEAL_SERIES, ChunkTable, merge_points
from .series_index import SeriesIndex

_INSERT = "INSERT OR REPLACE INTO samples (ts, series_id, value) VALUES "
# Rows per INSERT statement: one statement of many rows costs SQLite and the sqlite3 module
# far less than as many one-row statements (10,000 rows: about 5 ms instead of 12). 250 rows
# bind 750 values, under the 999 that the oldest SQLite builds allow.
_ROWS_PER_INSERT = 250
_INSERT_MANY = _INSERT + ", ".join(["(?, ?, ?)"] * _ROWS_PER_INSERT)
# `recent` for a few series walks timestamps (index seeks) instead of scanning rows once a
# timestamp holds at least this many samples (see SampleStore._recent_by_steps).
STEP_WALK_ROWS = 64


class SampleStore:
    """Append samples, read the recent history of series, prune old samples and silent series.

    Series are a source's: reads take the `source` whose series to read (None: the key in
    any source, for people's reads such as `alertd backtest --series`).
    """

    def __init__(self, db):
        self.db = db
        self.index = SeriesIndex(db)
        self.chunks = ChunkTable(db)
        self._last: dict[str, tuple] = {}  # per source: its last key list, their ids and id array
        self._horizon: float | None = None  # the last prune's cutoff: older points are not read
        db.on_rollback.append(self.forget_ids)

    def forget_ids(self) -> None:
        """Drop the cached series ids (after a rollback: ids handed out inside it are void);
        they are read again from the series table when next needed."""
        self.index.forget()
        self.chunks.forget()
        self._last = {}
        self._horizon = None

    def series_ids(self, samples: list[Sample], source: str, keys: list[str] | None = None) -> list[int]:
        """The id of each sample's series of `source`, creating series rows for new keys."""
        return self._ids(samples, source, keys, None)[0]

    def _ids(self, samples, source: str, keys, now: float | None):
        keys = keys if keys is not None else [s.key for s in samples]
        last = self._last.get(source)
        if last is not None and keys is last[0]:  # the engine hands the same key list for the same series
            return last[1], last[2]
        known = self.index.of(source)
        try:  # the usual tick: every series is known
            ids = list(map(known.__getitem__, keys))
        except KeyError:
            missing: dict[str, Sample] = {}
            for k, s in zip(keys, samples):
                if k not in known and (k not in missing or s.ts < missing[k].ts):
                    missing[k] = s  # the earliest sample gives the series' first_ts
            self.index.load(list(missing), source)
            new = {k: s for k, s in missing.items() if k not in known}
            if new:
                self.index.create(new, source, now)
            ids = [known[k] for k in keys]
        arr = np.fromiter(ids, dtype=np.int64, count=len(ids))
        self._last[source] = (keys, ids, arr)
        return ids, arr

    def append(self, samples: list[Sample], source: str, keys: list[str] | None = None,
               now: float | None = None) -> None:
        """Store samples (call inside `Store.atomic()` to group a tick in one transaction);
        `now` (daemon clock) is when their series were polled, for dropping silent series."""
        if not samples:
            return
        ids, id_array = self._ids(samples, source, keys, now)
        if now is not None:
            self.index.polled(id_array, now)
        _, _, stamps, values = zip(*samples)  # named tuples: the columns in one C pass
        n = len(samples)
        flat = [None] * (3 * n)  # ts, id, value, ts, ...: filled by three slice copies (no tuple per row)
        flat[0::3], flat[1::3], flat[2::3] = stamps, ids, values
        whole = n - n % _ROWS_PER_INSERT
        if whole:
            step = 3 * _ROWS_PER_INSERT
            self.db.conn.executemany(_INSERT_MANY, (flat[i:i + step] for i in range(0, 3 * whole, step)))
        if whole < n:
            rest = flat[3 * whole:]
            self.db.conn.executemany(_INSERT + "(?, ?, ?)", (rest[i:i + 3] for i in range(0, len(rest), 3)))

    def recent(self, keys: list[str], limit: int, before: float | None = None, source: str | None = None):
        """Up to `limit` latest points per series key of `source` before `before`, oldest first.

        Returns {key: (ts array, value array, number of points returned)} for keys with data.
        Reads the head backwards in time, then chunk windows backwards, and stops once every
        series has `limit` points or its first sample has been passed.
        """
        ids = self.index.lookup(keys, source)
        first = self.index.first
        cutoff = float("inf") if before is None else before
        wanted = {sid: k for k, sid in ids.items() if first[sid] < cutoff}
        if not wanted or limit <= 0:
            return {}
        head = self._head_recent(wanted, limit, cutoff)
        parts: dict[int, list] = {}
        if self.chunks.any():
            horizon = self.horizon()
            counts = dict.fromkeys(wanted, 0)
            w = self.chunks.window_before(cutoff)
            # series whose head has `limit` points newer than every chunk need no chunk
            newest = self.chunks.window_end(w) if w is not None else float("inf")
            still = {sid: True for sid in wanted if sid not in head or len(head[sid][0]) < limit
                     or head[sid][0][0] < newest}
            while w is not None and still and w + MAX_SPAN > horizon:
                for sid, (t, v) in self.chunks.window(w, still).items():
                    keep = (t < cutoff) & (t >= horizon)
                    if not keep.all():
                        t, v = t[keep], v[keep]
                    parts.setdefault(sid, []).append((t, v))
                    counts[sid] += len(t)
                for sid in list(still):
                    newer = int(np.count_nonzero(head[sid][0] >= w)) if sid in head else 0
                    if counts[sid] + newer >= limit or first[sid] >= w:
                        del still[sid]
                w = self.chunks.window_before(w)
        out = {}
        for sid, key in wanted.items():
            ts, values = merge_points(parts.get(sid, ())[::-1], head.get(sid))
            if len(ts):
                ts, values = ts[-limit:], values[-limit:]
                out[key] = (ts, values, len(ts))
        return out

    def _head_recent(self, wanted: dict[int, str], limit: int, cutoff: float) -> dict[int, tuple]:
        """{series id: (ts, values)}: the latest `limit` head rows of each series before `cutoff`."""
        first = self.index.first
        lower = min(first[sid] for sid in wanted)
        # A few series out of many (the pages' charts, a new series): let SQLite skip the rows
        # of the others, instead of handing every row of the time range to Python.
        few = len(wanted) <= 256
        if few and self._rows_per_step(cutoff) >= STEP_WALK_ROWS:
            return self._recent_by_steps(wanted, limit, cutoff, lower)
        only = f" AND series_id IN ({','.join('?' * len(wanted))})" if few else ""
        cursor = self.db.execute("SELECT ts, series_id, value FROM samples WHERE ts < ? AND ts >= ?"
                                 f"{only} ORDER BY ts DESC", [cutoff, lower, *(wanted if few else ())])
        ids = np.fromiter(wanted, dtype=np.int64, count=len(wanted))
        slot = np.full(int(ids.max()) + 1, -1, dtype=np.int64)  # series id -> row of the result
        slot[ids] = np.arange(len(ids))
        # Newest first, position k = the k-th newest point: arrays, not a Python tuple per
        # point (a start seeds every series x min_history points through here). Their width
        # grows with what the head holds, not with `limit`: a training read asks for 10,080
        # points, and 100,000 series x 10,080 x 2 floats would be 16 GB before a row is read.
        width = min(limit, 64)
        ts_out = np.full((len(ids), width), np.nan)
        val_out = np.full((len(ids), width), np.nan)
        count = np.zeros(len(ids), dtype=np.int64)
        # A few series are a few rows of each time step: fetch in small chunks, so the scan
        # (which walks every series' rows of a step) stops once each has `limit` points,
        # instead of running through the whole history to fill one big chunk.
        chunk_rows = max(16, 2 * len(ids)) if few else 20_000
        while (count < limit).any():
            rows = cursor.fetchmany(chunk_rows)
            if not rows:
                break
            chunk = np.array(rows, dtype=float).reshape(-1, 3)  # NULL values become nan
            sid = chunk[:, 1].astype(np.int64)
            row = np.where(sid < len(slot), slot[np.minimum(sid, len(slot) - 1)], -1)
            keep = row >= 0
            row, chunk = row[keep], chunk[keep]
            order = np.argsort(row, kind="stable")  # by series, newest first within each
            row, chunk = row[order], chunk[order]
            starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
            rank = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
            pos = count[row] + rank  # how many newer points of that series came before
            fits = pos < limit
            top = int(pos[fits].max(initial=-1)) + 1
            if top > width:
                width = min(limit, max(top, 2 * width))
                ts_out, val_out = _widen(ts_out, width), _widen(val_out, width)
            ts_out[row[fits], pos[fits]] = chunk[fits, 0]
            val_out[row[fits], pos[fits]] = chunk[fits, 2]
            np.add.at(count, row, 1)
        cursor.close()
        out = {}
        for i in np.flatnonzero(count):
            k = int(min(count[i], limit))
            out[int(ids[i])] = (ts_out[i, k - 1::-1].copy(), val_out[i, k - 1::-1].copy())  # oldest first
        return out

    def _rows_per_step(self, cutoff: float) -> float:
        """How many samples share a timestamp, on average over the newest 4,096 before
        `cutoff` (thousands when big polls dominate the store, about 1 when series have
        timestamps of their own)."""
        rows, steps = self.db.execute("SELECT COUNT(*), COUNT(DISTINCT ts) FROM (SELECT ts FROM samples "
                                      "WHERE ts < ? ORDER BY ts DESC LIMIT 4096)", [cutoff]).fetchone()
        return rows / steps if steps else 0.0

    def _recent_by_steps(self, wanted: dict[int, str], limit: int, cutoff: float, lower: float) -> dict:
        """The head's part of `recent` ({series id: (ts, values)}) for a few series when many
        share each timestamp (a poll of thousands):
        walk the distinct timestamps backwards, one index seek each, and read only the
        wanted series' rows at them (seeks too), instead of scanning every series' rows of
        the time range. Same answer as the scan."""
        points: dict[int, list] = {sid: [] for sid in wanted}
        step_ts = cutoff
        while True:
            missing = [sid for sid, got in points.items() if len(got) < limit]
            if not missing:
                break
            steps = []
            while len(steps) < 64:
                ts = self.db.execute("SELECT MAX(ts) FROM samples WHERE ts < ?", [step_ts]).fetchone()[0]
                if ts is None or ts < lower:
                    break
                steps.append(ts)
                step_ts = ts
            if not steps:
                break
            rows = self.db.execute(
                f"SELECT ts, series_id, value FROM samples WHERE ts IN ({','.join('?' * len(steps))}) "
                f"AND series_id IN ({','.join('?' * len(missing))}) ORDER BY ts DESC", [*steps, *missing])
            for ts, sid, value in rows:
                if len(points[sid]) < limit:
                    points[sid].append((ts, np.nan if value is None else value))
        out = {}
        for sid, got in points.items():
            if got:
                got.reverse()  # oldest first
                ts, values = np.array(got, dtype=float).reshape(-1, 2).T
                out[sid] = (ts.copy(), values.copy())
        return out

    def histories(self, keys: list[str], start: float | None = None, end: float | None = None,
                  source: str | None = None):
        """All stored points of several series of `source` in [start, end): {key: (ts, values)}."""
        ids = self.index.lookup(keys, source)
        by_id = {sid: k for k, sid in ids.items()}
        lo = start if start is not None else float("-inf")
        hi = end if end is not None else float("inf")
        got: dict[int, list] = defaultdict(list)
        cursor = self.db.execute("SELECT ts, series_id, value FROM samples WHERE ts >= ? AND ts < ? "
                                 "ORDER BY ts", [lo, hi])
        for rows in iter(lambda: cursor.fetchmany(10_000), []):
            for ts, sid, value in rows:
                if sid in by_id:
                    got[sid].append((ts, np.nan if value is None else value))
        parts = self.chunks.between(by_id, lo, hi) if by_id and self.chunks.any() else {}
        horizon = max(lo, self.horizon())
        out = {}
        for key in keys:
            sid = ids.get(key)
            arr = np.array(got.get(sid, []), dtype=float).reshape(-1, 2)
            sealed = [(t[m], v[m]) for t, v in parts.get(sid, ()) for m in [(t >= horizon) & (t < hi)]]
            out[key] = merge_points(sealed, (arr[:, 0], arr[:, 1]))
        return out

    def history(self, key: str, start: float | None = None, end: float | None = None, source: str | None = None):
        """All stored (ts, value) of one series in [start, end), as two arrays."""
        return self.histories([key], start, end, source)[key]

    def series(self) -> list[dict]:
        """All known series: key, name, labels, source."""
        return [dict(r, labels=json.loads(r["labels"])) for r in self.db["series"].rows]

    def labels_of(self, key: str) -> Labels:
        row = next(self.db["series"].rows_where("key = ?", [key]), None)
        return tuple(sorted(json.loads(row["labels"]).items())) if row else ()

    def sources_of(self, key: str) -> list[str]:
        """The sources that have a series `key`."""
        return self.index.sources_of(key)

    def horizon(self) -> float:
        """The last prune's cutoff (points older than it are not read), -inf before any."""
        if self._horizon is None:
            row = self.db.execute("SELECT value FROM kv WHERE key = 'samples_horizon'").fetchone()
            self._horizon = json.loads(row[0]) if row else float("-inf")
        return self._horizon

    def prune(self, before: float, limit: int | None = None) -> int:
        """Delete samples older than `before`: head rows (a range delete along the primary
        key), then whole chunk windows that end by `before` (points of a window that reaches
        past it are trimmed at read). With `limit`, one step: about that many of the oldest
        head rows, or else one chunk window (so a big delete can be done in steps); 0 when
        nothing is left to delete."""
        if before != self.horizon():  # (the prune job's steps all share one cutoff)
            self._horizon = before
            self.db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('samples_horizon', ?)",
                            [json.dumps(before)])
        deleted = self._prune_head(before, limit)
        if limit is not None and deleted:
            return deleted
        while True:
            step = self.chunks.prune_window(before)
            if step is None:
                return deleted
            deleted += step
            if limit is not None:
                return deleted

    def _prune_head(self, before: float, limit: int | None) -> int:
        if limit is None:
            return self.db.execute("DELETE FROM samples WHERE ts < ?", [before]).rowcount
        # the ts of the limit-th oldest row bounds the step (an index seek: the key starts with ts)
        bound = self.db.execute("SELECT ts FROM samples ORDER BY ts LIMIT 1 OFFSET ?", [limit]).fetchone()
        if bound is None or bound[0] >= before:
            return self.db.execute("DELETE FROM samples WHERE ts < ?", [before]).rowcount
        deleted = self.db.execute("DELETE FROM samples WHERE ts < ?", [bound[0]]).rowcount
        if not deleted:  # more than `limit` rows share the oldest timestamp: take them all
            deleted = self.db.execute("DELETE FROM samples WHERE ts <= ?", [bound[0]]).rowcount
        return deleted

    def seal(self, series: int = SEAL_SERIES) -> int:
        """One sealing step (see alertd/store/sample_chunks.py): head rows of complete windows
        into chunks, for up to `series` series; the rows sealed, -1 when nothing is left. The
        chunks and the head's deletes commit together, inside a caller's transaction or in one
        of their own (outside one, SQLite's implicit transaction stayed open: the next commit
        took the deletes, and closing the store dropped the chunks)."""
        with self.db.atomic():
            return self.chunks.seal_step(series)

    def seal_all(self) -> int:
        """Seal every complete window of the head (tests, tools); the rows sealed."""
        total = 0
        while (step := self.seal()) >= 0:
            total += step
        return total

    def count(self) -> int:
        """Samples held (head rows and chunk points; a head row that rewrote a chunk's point
        counts twice until the next seal merges them)."""
        return self.db.execute("SELECT count(*) FROM samples").fetchone()[0] + self.chunks.count()

    def span(self) -> tuple[float | None, float | None]:
        """The oldest and newest timestamp held (None, None when empty)."""
        lo, hi = self.db.execute("SELECT min(ts), max(ts) FROM samples").fetchone()
        c_lo, c_hi = self.chunks.span()
        if c_lo is not None:
            c_lo = max(c_lo, self.horizon())
        los = [x for x in (lo, c_lo) if x is not None]
        his = [x for x in (hi, c_hi) if x is not None]
        return (min(los) if los else None), (max(his) if his else None)

    def drop_silent(self, before: float) -> list[tuple[str, str]]:
        """Delete the series not polled since `before`; their (source, key)."""
        gone = self.index.silent(before)
        self.index.drop(gone)
        self.chunks.drop_series([sid for sid, _, _ in gone])
        self._last = {}
        return [(source, key) for _, source, key in gone]


def _widen(a: np.ndarray, width: int) -> np.ndarray:
    """`a` with NaN columns added on the right up to `width`."""
    out = np.full((a.shape[0], width), np.nan)
    out[:, :a.shape[1]] = a
    return out
