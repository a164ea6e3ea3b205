"""Recent detections (anomalous points) per rule and series, kept in memory for the status page.

Bounded: at most `per_series` points for each series and `max_series` series per rule; the
oldest go first. After a restart the list starts empty; the store's incidents (which do
survive) show where detections led to incidents.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class Detections:
    """(ts, value) of the latest anomalous points, by rule name and series key."""

    def __init__(self, per_series: int = 256, max_series: int = 1000):
        self.per_series, self.max_series = per_series, max_series
        self._by_rule: dict[str, OrderedDict[str, deque]] = {}

    def add(self, rule: str, keys, ts, values) -> None:
        series = self._by_rule.setdefault(rule, OrderedDict())
        for key, t, v in zip(keys, ts, values):
            points = series.get(key)
            if points is None:
                points = series[key] = deque(maxlen=self.per_series)
                if len(series) > self.max_series:
                    series.popitem(last=False)
            else:
                series.move_to_end(key)
            points.append((float(t), float(v)))

    def of(self, rule: str, key: str) -> list[tuple[float, float]]:
        return list(self._by_rule.get(rule, {}).get(key, ()))

    def forget(self, rule: str) -> None:
        """Drop a rule's detections (it was removed or changed by a reload)."""
        self._by_rule.pop(rule, None)
