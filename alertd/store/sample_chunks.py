"""Sealed samples: one compressed chunk per series per time window (issue 20).

A tick appends its samples to the head (the `samples` table, one row per sample: the same
cheap, crash-safe append as ever). `seal_step` moves the head's rows of complete windows
(`SPAN` seconds, aligned to multiples of it; complete = older than the window holding the
newest head row) into `sample_chunks`: one row per (window, series), keyed by both in one
integer (`key`: time order, as the head), holding its values coded with pcodec (alertd/store/chunk_codec.py), and a reference into `sample_times`, where each
distinct timestamp array of a window is stored once (the series of one poll share their
timestamps). A head row that lands in a window already sealed (a back-fill, a late sample)
is merged into that chunk at the next seal; until then it wins over the chunk's point of the
same time, as a later write of that point did before chunks.

Every step runs in its caller's transaction and moves rows from the head to chunks within
it, so a crash keeps every committed sample in exactly one of the two.
"""

from __future__ import annotations

import math

import numpy as np

from .chunk_codec import decode_times, decode_values, encode_times, encode_values

SPAN = 1800.0  # seconds per chunk window (180 points at 10 s)
MAX_SPAN = 86400.0  # no window was ever longer: bounds the key ranges of reads
SEAL_SERIES = 250  # series per seal step (a step takes about 0.1 s at 10 s polls)
FEW = 256  # reads of at most this many series seek their chunks by key
TIMES_KEPT = 4096  # decoded timestamp arrays kept in memory (a window has one per distinct poll rhythm)
_MINUTES = 2 ** 30  # window starts (in minutes) a key can hold, either side of 1970
_LOWEST, _HIGHEST = -_MINUTES * 60.0, _MINUTES * 60.0 - MAX_SPAN


def key(start: float, series_id: int = 0) -> int:
    """A chunk's id: its window's start in minutes, then its series id (below 2**32)."""
    return (int(start) // 60) * 2 ** 32 + series_id


def window_keys(start: float) -> tuple[int, int]:
    """The range of ids of the chunks of the window starting at `start`."""
    return key(start), key(start) + 2 ** 32


class ChunkTable:
    """Sealing the head into chunks, reading chunks back, pruning them."""

    def __init__(self, db):
        self.db = db
        self.forget()

    def forget(self) -> None:
        """Drop the caches (after a rollback: ids handed out inside it are void)."""
        self._times: dict[int, np.ndarray] = {}  # times id -> decoded timestamps
        self._window_times: dict[float, dict[bytes, int]] = {}  # window -> ts bytes -> id
        self._cursor: tuple | None = None  # sealing: window, next series id, its poll times, last id

    # -- sealing --------------------------------------------------------------------------
    def seal_step(self, series: int = SEAL_SERIES) -> int:
        """Seal the head rows of the oldest complete window for the next `series` series ids;
        returns the head rows sealed, or -1 when there is nothing left to seal."""
        # (times a chunk id cannot hold, some 2,000 years away, stay in the head)
        top = self.db.execute("SELECT max(ts) FROM samples WHERE ts < ?", [_HIGHEST]).fetchone()[0]
        first = self.db.execute("SELECT min(ts) FROM samples WHERE ts >= ?", [_LOWEST]).fetchone()[0]
        if top is None or first is None:
            return -1
        cut = math.floor(top / SPAN) * SPAN
        if first >= cut:
            return -1
        w0 = math.floor(first / SPAN) * SPAN
        w1 = w0 + SPAN
        if self._cursor is None or self._cursor[0] != w0:
            top_id = self.db.execute("SELECT max(id) FROM series").fetchone()[0] or 0
            self._cursor = (w0, -2**62, self._stamps(w0, w1), top_id)
        _, lo, stamps, top_id = self._cursor
        if lo > top_id:
            self._cursor = None  # every id done: the next step looks at what is left
            return 0
        hi = 2**62 if lo + series > top_id else (max(lo, 0) + series)  # the last slice takes any id
        # Poll times of the window, when there are few: SQLite seeks each (ts, first id) instead
        # of scanning every row of the window for a slice of series.
        where = (f"ts IN ({','.join('?' * len(stamps))})" if stamps is not None else "ts >= ? AND ts < ?")
        params = [*(stamps if stamps is not None else (w0, w1)), lo, hi]
        rows = self.db.execute(f"SELECT series_id, ts, value FROM samples WHERE {where} AND series_id >= ? "
                               "AND series_id < ?", params).fetchall()
        self._cursor = (w0, hi, stamps, top_id)
        if not rows:
            return 0
        arr = np.array(rows, dtype=float).reshape(-1, 3)
        order = np.lexsort((arr[:, 1], arr[:, 0]))  # by series, then time
        arr = arr[order]
        self._write(w0, w1, arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2])
        return self.db.execute(f"DELETE FROM samples WHERE {where} AND series_id >= ? AND series_id < ?",
                               params).rowcount

    def _stamps(self, w0: float, w1: float, most: int = 1000) -> list[float] | None:
        """The distinct timestamps of the head in [w0, w1), by seeks; None if over `most`."""
        out, at = [], w0
        row = self.db.execute("SELECT min(ts) FROM samples WHERE ts >= ? AND ts < ?", [w0, w1]).fetchone()
        while row[0] is not None:
            out.append(row[0])
            if len(out) > most:
                return None
            at = row[0]
            row = self.db.execute("SELECT min(ts) FROM samples WHERE ts > ? AND ts < ?", [at, w1]).fetchone()
        return out

    def _write(self, w0: float, w1: float, sid, ts, values) -> None:
        """Chunks for (sorted by series, then time) head rows of window w0, merged with any
        chunk those series already have there (the head's point wins at the same time)."""
        starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
        ends = np.r_[starts[1:], len(sid)]
        ids = sid[starts]
        old = self._existing(w0, ids)
        times = self._times_of_window(w0)
        out = []
        for s, e, i in zip(starts, ends, ids):
            t, v = ts[s:e], values[s:e]
            if int(i) in old:
                t, v = merge_points([old[int(i)]], (t, v))
            out.append((key(w0, int(i)), w0, w1, len(t), self._times_id(w0, w1, t, times), encode_values(v)))
        self.db.conn.executemany("INSERT OR REPLACE INTO sample_chunks (id, start_ts, end_ts, n, times_id, data) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", out)

    def _existing(self, w0: float, ids: np.ndarray) -> dict[int, tuple]:
        out = {}
        for i in range(0, len(ids), 500):
            part = [key(w0, int(x)) for x in ids[i:i + 500]]
            for cid, times_id, data in self.db.execute(
                    f"SELECT id, times_id, data FROM sample_chunks WHERE id IN ({','.join('?' * len(part))})", part):
                out[cid % 2 ** 32] = (self.times(times_id), decode_values(data))
        return out

    def _times_of_window(self, w0: float) -> dict[bytes, int]:
        known = self._window_times.get(w0)
        if known is None:
            if len(self._window_times) > 4:
                self._window_times.clear()
            known = self._window_times[w0] = {}
            for tid, data in self.db.execute("SELECT id, data FROM sample_times WHERE start_ts = ?", [w0]):
                known[decode_times(data).tobytes()] = tid
        return known

    def _times_id(self, w0: float, w1: float, t: np.ndarray, known: dict[bytes, int]) -> int:
        key = t.tobytes()
        tid = known.get(key)
        if tid is None:
            tid = self.db.execute("INSERT INTO sample_times (start_ts, end_ts, n, data) VALUES (?, ?, ?, ?)",
                                  [w0, w1, len(t), encode_times(t)]).lastrowid
            known[key] = tid
            self._remember(tid, t.copy())
        return tid

    def _remember(self, tid: int, t: np.ndarray) -> np.ndarray:
        """Keep decoded timestamps for the next read, at most TIMES_KEPT arrays (every seal
        adds the new ones: without the bound, a daemon kept every window's since its start)."""
        if len(self._times) >= TIMES_KEPT:
            self._times.clear()
        self._times[tid] = t
        return t

    # -- reading --------------------------------------------------------------------------
    def times(self, tid: int) -> np.ndarray:
        got = self._times.get(tid)
        if got is None:
            row = self.db.execute("SELECT data FROM sample_times WHERE id = ?", [tid]).fetchone()
            got = self._remember(tid, decode_times(row[0]) if row else np.zeros(0))
        return got

    def any(self) -> bool:
        return self.db.execute("SELECT 1 FROM sample_chunks LIMIT 1").fetchone() is not None

    def window_before(self, before: float) -> float | None:
        """The start of the newest window that starts before `before` (a seek)."""
        bound = "" if before > _HIGHEST else " WHERE id < ?"
        row = self.db.execute(f"SELECT start_ts FROM sample_chunks{bound} ORDER BY id DESC LIMIT 1",
                              [] if before > _HIGHEST else [key(math.ceil(max(before, _LOWEST) / 60) * 60)]).fetchone()
        return None if row is None else row[0]

    def window_after(self, at: float) -> float | None:
        """The start of the oldest window that starts at or after `at` (a seek)."""
        if at > _HIGHEST:
            return None
        row = self.db.execute("SELECT start_ts FROM sample_chunks WHERE id >= ? ORDER BY id LIMIT 1",
                              [key(math.ceil(max(at, _LOWEST) / 60) * 60)]).fetchone()
        return None if row is None else row[0]

    def window_end(self, w0: float) -> float:
        return self.db.execute("SELECT max(end_ts) FROM sample_chunks WHERE id >= ? AND id < ?",
                               window_keys(w0)).fetchone()[0]

    def window(self, w0: float, ids: dict[int, object]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{series id: (ts, values)} of the chunks of window `w0` for the series `ids`."""
        if len(ids) <= FEW:
            part = [key(w0, sid) for sid in ids]
            rows = self.db.execute(f"SELECT id, times_id, data FROM sample_chunks WHERE id IN "
                                   f"({','.join('?' * len(part))})", part)
        else:
            rows = self.db.execute("SELECT id, times_id, data FROM sample_chunks WHERE id >= ? AND id < ?",
                                   window_keys(w0))
        return {cid % 2 ** 32: (self.times(tid), decode_values(data)) for cid, tid, data in rows
                if cid % 2 ** 32 in ids}

    def windows(self, start: float = -math.inf, end: float = math.inf):
        """The starts of the windows that may hold points in [start, end), oldest first."""
        w = self.window_after(start - MAX_SPAN)
        while w is not None and w < end:
            yield w
            w = self.window_after(w + 60)

    def between(self, ids: dict[int, object], start: float, end: float) -> dict[int, list]:
        """{series id: [(ts, values) per chunk, oldest first]} of chunks overlapping [start, end)."""
        out: dict[int, list] = {}
        for w in self.windows(start, end):
            for sid, got in self.window(w, ids).items():
                out.setdefault(sid, []).append(got)
        return out

    def count(self) -> int:
        return self.db.execute("SELECT COALESCE(sum(n), 0) FROM sample_chunks").fetchone()[0]

    def span(self) -> tuple[float | None, float | None]:
        """The oldest and newest timestamp held in chunks."""
        lo, hi = self.window_after(-math.inf), self.window_before(math.inf)
        if lo is None:
            return None, None
        # the oldest/newest window may hold several timestamp arrays: take their extremes
        lows = [self.times(t)[0] for (t,) in self.db.execute(
            "SELECT DISTINCT times_id FROM sample_chunks WHERE id >= ? AND id < ?", window_keys(lo))]
        highs = [self.times(t)[-1] for (t,) in self.db.execute(
            "SELECT DISTINCT times_id FROM sample_chunks WHERE id >= ? AND id < ?", window_keys(hi))]
        return float(min(lows)), float(max(highs))

    # -- pruning --------------------------------------------------------------------------
    def prune_window(self, before: float) -> int | None:
        """Delete the oldest window's chunks if the whole window is older than `before`;
        the samples they held, or None when no window is that old."""
        w0 = self.window_after(-math.inf)
        if w0 is None or self.window_end(w0) > before:
            self.db.execute("DELETE FROM sample_times WHERE end_ts <= ?", [before])
            return None
        keys = window_keys(w0)
        n = self.db.execute("SELECT COALESCE(sum(n), 0) FROM sample_chunks WHERE id >= ? AND id < ?", keys).fetchone()[0]
        self.db.execute("DELETE FROM sample_chunks WHERE id >= ? AND id < ?", keys)
        self.db.execute("DELETE FROM sample_times WHERE start_ts = ?", [w0])
        self._window_times.pop(w0, None)
        return n

    def drop_series(self, ids: list[int]) -> None:
        """Delete every chunk of the series `ids` (window by window: ids are keys)."""
        if not ids:
            return
        for w in list(self.windows()):
            for i in range(0, len(ids), 500):
                part = [key(w, sid) for sid in ids[i:i + 500]]
                self.db.execute(f"DELETE FROM sample_chunks WHERE id IN ({','.join('?' * len(part))})", part)


def merge_points(sealed, head) -> tuple[np.ndarray, np.ndarray]:
    """One series' points in time order from its chunks (oldest first) and its head rows; at
    the same time the head's point wins (it was written later)."""
    parts = [p for p in sealed if len(p[0])]
    if head is not None and len(head[0]):
        parts.append(head)
    if not parts:
        return np.zeros(0), np.zeros(0)
    if len(parts) == 1:
        return parts[0]
    ts = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    if (np.diff(ts) > 0).all():
        return ts, values
    ts, values = ts[::-1], values[::-1]  # newest part first: the head wins at equal times
    ts, first = np.unique(ts, return_index=True)
    return ts, values[first]
