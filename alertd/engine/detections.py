"""Recent detections (anomalous points) per rule and series, kept in memory for the pages.

Bounded: at most `per_series` points for each series and `max_series` series per rule; the
oldest go first. After a restart the list starts empty; the store's incidents (which do
survive) show where detections led to incidents.

Beside them, the expected band (the detector's lower and upper bound) of every point judged
while a series is anomalous or has an open incident: the incident page draws it around the
line. Only those series are kept (a few, not every series of every tick), as bounded.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class Detections:
    """(ts, value) of the latest anomalous points, by rule name and series key."""

    def __init__(self, per_series: int = 256, max_series: int = 1000):
        self.per_series, self.max_series = per_series, max_series
        self._by_rule: dict[str, OrderedDict[str, deque]] = {}
        self._bands: dict[str, OrderedDict[str, deque]] = {}

    def add(self, rule: str, keys, ts, values) -> None:
        self._append(self._by_rule, rule, keys, zip(ts, values))

    def band(self, rule: str, key: str, ts: float, lower: float, upper: float) -> None:
        """The expected band at one point of a series with an open (or opening) incident
        (one call per such series per tick: thousands at 100,000 series, so no generic path)."""
        series = self._bands.get(rule)
        if series is None:
            series = self._bands[rule] = OrderedDict()
        self._points(series, key).append((float(ts), float(lower), float(upper)))

    def band_of(self, rule: str, key: str) -> list[tuple[float, float, float]]:
        return list(self._bands.get(rule, {}).get(key, ()))

    def _append(self, store: dict, rule: str, keys, items) -> None:
        series = store.setdefault(rule, OrderedDict())
        for key, item in zip(keys, items):
            self._points(series, key).append(tuple(float(x) for x in item))

    def _points(self, series: OrderedDict, key: str) -> deque:
        """A series' points, the most recently used (the least recent goes past max_series)."""
        points = series.get(key)
        if points is None:
            points = series[key] = deque(maxlen=self.per_series)
            if len(series) > self.max_series:
                series.popitem(last=False)
        else:
            series.move_to_end(key)
        return points

    def of(self, rule: str, key: str) -> list[tuple[float, float]]:
        return list(self._by_rule.get(rule, {}).get(key, ()))

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
