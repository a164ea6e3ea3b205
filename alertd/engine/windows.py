"""Per-rule history buffers: the recent points of every series a rule watches.

`SeriesWindows` keeps, for each series, the last `window` values and timestamps in one numpy
array, so a tick turns its samples into a `Batch` with a few vectorised copies instead of a
Python loop per point. History is only ever appended in time order, which keeps scoring
causal: a batch never contains a point later than its current one.

A tick's pushes can be undone (`begin`, then `rollback` or `end`): a tick whose transaction
fails must leave the windows as the store has them, or the same points brought again by the
source at the next poll would be skipped as repeated.
"""

from __future__ import annotations

import numpy as np

from ..model import Batch, Labels, Status


class SeriesWindows:
    """Ring-like buffers of the last `window` points for each series key."""

    def __init__(self, window: int, capacity: int = 64):
        self.window = max(int(window), 1)
        self.rows: dict[str, int] = {}
        self.keys: list[str] = []
        self.labels: list[Labels] = []
        self.epoch = 0  # bumped when rows are dropped (row numbers change then)
        self._undo: list | None = None  # during a tick: what each push overwrote
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        self.values = np.full((capacity, self.window), np.nan)
        self.times = np.full((capacity, self.window), np.nan)
        self.seen = np.zeros(capacity, dtype=np.int64)
        self.last_ts = np.full(capacity, -np.inf)
        self.was_anomalous = np.zeros(capacity, dtype=bool)
        self.active = np.zeros(capacity, dtype=bool)  # an incident is open for this series
        self.polled = np.full(capacity, -np.inf)  # daemon clock of the last poll that had the series

    def _columns(self) -> tuple:
        return (self.values, self.times, self.seen, self.last_ts, self.was_anomalous, self.active, self.polled)

    def _grow(self, capacity: int | None = None) -> None:
        old = self._columns()
        n = len(self.keys)
        self._alloc(capacity or max(64, 2 * old[0].shape[0]))
        for new, prev in zip(self._columns(), old):
            new[:n] = prev[:n]

    def add(self, key: str, labels: Labels, now: float | None = None) -> int:
        """The row of `key`, adding an empty one for a new series (polled at `now`)."""
        row = self.rows.get(key)
        if row is None:
            row = len(self.keys)
            if row >= self.values.shape[0]:
                self._grow()
            self.rows[key] = row
            self.keys.append(key)
            self.labels.append(labels)
            if now is not None:
                self.polled[row] = now
        return row

    def touch(self, rows: np.ndarray, now: float) -> None:
        """The series `rows` were in a poll at `now`."""
        self.polled[rows] = now

    def keep(self, kept: np.ndarray) -> None:
        """Keep only the rows `kept` (ascending), renumbered 0..len(kept)-1 in that order."""
        old = self._columns()
        self.keys = [self.keys[r] for r in kept]
        self.labels = [self.labels[r] for r in kept]
        self.rows = {k: i for i, k in enumerate(self.keys)}
        self._alloc(max(64, 2 * len(kept)))
        for new, prev in zip(self._columns(), old):
            new[:len(kept)] = prev[kept]
        self.epoch += 1

    def seed(self, row: int, ts: np.ndarray, values: np.ndarray, total: int) -> None:
        """Load stored history (oldest first) into a new row, one row at a time. The daemon
        seeds in batches (alertd/engine/seeding.py, `seed_rows`); this is the plain version
        that tests/test_seeding.py checks the batches against."""
        ts, values = ts[-self.window:], values[-self.window:]
        k = len(ts)
        if k:
            self.values[row, -k:] = values
            self.times[row, -k:] = ts
            self.last_ts[row] = ts[-1]
        self.seen[row] = total

    def seed_rows(self, first: int, ts: np.ndarray, values: np.ndarray, seen: np.ndarray) -> None:
        """Load stored history into the new rows first, first + 1, ...: `ts`/`values` (n,
        window) blocks, right-aligned, NaN where a series has fewer points; `seen` its count
        (what `seed` does row by row, in a few copies)."""
        n = len(seen)
        rows = slice(first, first + n)
        self.values[rows], self.times[rows], self.seen[rows] = values, ts, seen
        last = ts[:, -1] if ts.shape[1] else np.full(n, np.nan)
        self.last_ts[rows] = np.where(np.isnan(last), -np.inf, last)

    def _all(self, rows: np.ndarray):
        """`rows` as a slice when it is every series in order (the usual tick): numpy then
        copies memory blocks instead of gathering row by row."""
        n = len(self.keys)
        if len(rows) == n and n and rows[0] == 0 and rows[-1] == n - 1 and (np.diff(rows) == 1).all():
            return slice(0, n)
        return rows

    def batch(self, rows: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Batch:
        """The detector input for the current points `ts`/`values` of series `rows`."""
        sel = self._all(rows)
        whole = isinstance(sel, slice)
        return Batch(keys=list(self.keys) if whole else [self.keys[r] for r in rows],
                     labels=list(self.labels) if whole else [self.labels[r] for r in rows],
                     ts=ts, values=values, history=self.values[sel].copy(), history_ts=self.times[sel].copy(),
                     seen=self.seen[sel] + 1, was_anomalous=self.was_anomalous[sel].copy())

    def begin(self) -> None:
        """Start recording pushes so that `rollback` can undo them."""
        self._undo = []

    def end(self) -> None:
        """The tick committed: forget the record."""
        self._undo = None

    def rollback(self) -> None:
        """Undo the pushes since `begin` (the tick failed), newest first."""
        for rows, first_v, first_t, seen, last_ts, anomalous in reversed(self._undo or ()):
            if self.window > 1:
                self.values[rows, 1:] = self.values[rows, :-1]
                self.times[rows, 1:] = self.times[rows, :-1]
            self.values[rows, 0], self.times[rows, 0] = first_v, first_t
            self.seen[rows], self.last_ts[rows], self.was_anomalous[rows] = seen, last_ts, anomalous
        self._undo = None

    def push(self, rows: np.ndarray, ts: np.ndarray, values: np.ndarray,
             status: np.ndarray | None = None) -> None:
        """Append the current points to the history of `rows` (after scoring them)."""
        rows_in = rows
        rows = self._all(rows)
        if self._undo is not None:  # the oldest point falls out: keep it, and what else changes
            self._undo.append((rows, self.values[rows, 0].copy(), self.times[rows, 0].copy(),
                               self.seen[rows].copy(), self.last_ts[rows].copy(), self.was_anomalous[rows].copy()))
        if self.window > 1:
            self.values[rows, :-1] = self.values[rows, 1:]
            self.times[rows, :-1] = self.times[rows, 1:]
        self.values[rows, -1] = values
        self.times[rows, -1] = ts
        self.seen[rows] += 1
        self.last_ts[rows] = ts
        if status is not None:
            judged = (status == Status.OK) | (status == Status.ANOMALOUS)
            self.was_anomalous[rows_in[judged]] = status[judged] == Status.ANOMALOUS
