"""Recent detections (anomalous points) per rule and series, kept in memory for the pages.

Bounded: at most `per_series` points for each series and `max_series` series per rule; the
oldest go first. After a restart the list starts empty; the store's incidents (which do
survive) show where detections led to incidents.

Beside them, the expected band (the detector's lower and upper bound) of every point judged
while a series is anomalous or has an open incident: the incident page draws it around the
line. Only those series are kept (a few, not every series of every tick), as bounded.

Each series' points live in a fixed ring of floats (`_Ring`, allocated whole at its first
point: 4 KiB of points, 6 KiB of bands at 256 points), not in a deque of tuples (about 33
KiB of Python objects for a full band, allocated a point at a time): a fifth of the memory,
and a daemon's memory steps up when a series is first anomalous instead of creeping for
hours while the deques fill (the real-time soak's RSS, docs/reliability.md).
"""

from __future__ import annotations

from array import array
from collections import OrderedDict


class Detections:
    """(ts, value) of the latest anomalous points, by rule name and series key."""

    def __init__(self, per_series: int = 256, max_series: int = 1000):
        self.per_series, self.max_series = per_series, max_series
        self._by_rule: dict[str, OrderedDict[str, "_Ring"]] = {}
        self._bands: dict[str, OrderedDict[str, "_Ring"]] = {}

    def add(self, rule: str, keys, ts, values) -> None:
        self._append(self._by_rule, rule, keys, zip(ts, values))

    def band(self, rule: str, key: str, ts: float, lower: float, upper: float) -> None:
        """The expected band at one point of a series with an open (or opening) incident
        (one call per such series per tick: thousands at 100,000 series, so no generic path)."""
        series = self._bands.get(rule)
        if series is None:
            series = self._bands[rule] = OrderedDict()
        self._points(series, key, 3).append3(ts, lower, upper)

    def band_of(self, rule: str, key: str) -> list[tuple[float, float, float]]:
        ring = self._bands.get(rule, {}).get(key)
        return ring.rows() if ring is not None else []

    def _append(self, store: dict, rule: str, keys, items) -> None:
        series = store.setdefault(rule, OrderedDict())
        for key, (ts, value) in zip(keys, items):
            self._points(series, key, 2).append2(ts, value)

    def _points(self, series: OrderedDict, key: str, width: int) -> "_Ring":
        """A series' points, the most recently used (the least recent goes past max_series)."""
        points = series.get(key)
        if points is None:
            points = series[key] = _Ring(width, self.per_series)
            if len(series) > self.max_series:
                series.popitem(last=False)
        else:
            series.move_to_end(key)
        return points

    def of(self, rule: str, key: str) -> list[tuple[float, float]]:
        ring = self._by_rule.get(rule, {}).get(key)
        return ring.rows() if ring is not None else []

    def held(self) -> int:
        """Points held (detections and band points of every rule): for tests and benches."""
        return sum(len(ring) for store in (self._by_rule, self._bands)
                   for series in store.values() for ring in series.values())

    def forget_keys(self, rule: str, keys) -> None:
        """Drop the detections and bands of some series of a rule (series the daemon dropped)."""
        for store in (self._by_rule, self._bands):
            series = store.get(rule)
            for key in keys if series else ():
                series.pop(key, None)

    def forget(self, rule: str) -> None:
        """Drop a rule's detections (it was removed or changed by a reload)."""
        self._by_rule.pop(rule, None)
        self._bands.pop(rule, None)


class _Ring:
    """The last `size` rows of `width` floats, oldest overwritten first, in one flat array."""

    __slots__ = ("data", "width", "size", "n", "head")

    def __init__(self, width: int, size: int):
        self.data = array("d", bytes(8 * width * size))
        self.width, self.size, self.n, self.head = width, size, 0, 0

    def __len__(self) -> int:
        return self.n

    def _next(self) -> int:
        at = self.head * self.width
        self.head = (self.head + 1) % self.size
        if self.n < self.size:
            self.n += 1
        return at

    def append2(self, a: float, b: float) -> None:
        at, data = self._next(), self.data
        data[at], data[at + 1] = a, b

    def append3(self, a: float, b: float, c: float) -> None:
        at, data = self._next(), self.data
        data[at], data[at + 1], data[at + 2] = a, b, c

    def rows(self) -> list[tuple]:
        """The rows, oldest first."""
        w, data = self.width, self.data
        first = (self.head - self.n) % self.size
        out = []
        for j in range(self.n):
            at = ((first + j) % self.size) * w
            out.append(tuple(data[at:at + w]))
        return out
