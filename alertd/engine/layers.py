"""A poll's points of one rule in batches of at most one point per series, in time order.

The usual poll brings one point per series: one batch, one detector call. A poll with
several points of a series (a burst pushed at once, a replay catching up) gives as many
batches as its deepest series has points, each one detector call, so one push could keep
the tick (and the event loop) busy for seconds. Two bounds keep the work of a poll small:

- points of a series with the same timestamp count once, with the last value (the one the
  store keeps): 190,000 points pushed without `ts` are one point, not 190,000 calls;
- at most `MAX_SCORED` points of a series are scored in one poll, the newest; the older
  ones are stored (training sees them), and the last `window` of them go into the history
  unscored.

What is left out is tallied per reason in `Skips` and reported once per tick: one log line
per reason, never one per point.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from operator import itemgetter

import numpy as np

from ..model import Sample

MAX_SCORED = 100  # points of one series scored in one poll


class Skips:
    """Points a tick left out, by reason, with the first series of each (for the log)."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.series: dict[str, str] = {}

    def add(self, reason: str, count: int, series: str) -> None:
        if count:
            self.counts[reason] += count
            self.series.setdefault(reason, series)

    def report(self, metrics, log, source: str, rule: str, alerts: bool) -> None:
        """Count them in alertd_samples_skipped_total; log one line per reason (not for a
        back-fill, where overlapping stored history is expected)."""
        for reason, count in self.counts.items():
            metrics.samples_skipped.labels(source, reason).inc(count)
            if alerts:
                extra = {"note": f"only the newest {MAX_SCORED} points of a series are scored in one poll; "
                                 "the older ones are stored"} if reason == "too_many_points" else {}
                log.warning("samples_skipped", source=source, rule=rule, reason=reason, count=count,
                            series=self.series[reason], **extra)


def layers(rt, samples: list[Sample], keys: list[str], skips: Skips):
    """Yield (rows, ts, values, scored) batches of `samples` for the windows of runtime `rt`."""
    if keys is not rt.layout[0]:  # (the key list of the last poll keeps its rows)
        index = rt.windows.rows
        row_list = [index[k] for k in keys]
        n = len(row_list)
        distinct = np.fromiter(row_list, dtype=np.int64, count=n) if len(set(row_list)) == n else None
        rt.layout = (keys, row_list, distinct)
    _, row_list, distinct = rt.layout
    if distinct is not None:  # the usual tick: one point per series
        _, _, stamps, values = zip(*samples)
        yield distinct, np.array(stamps, dtype=float), np.array(values, dtype=float), True
        return
    by_row: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for r, s in zip(row_list, samples):
        by_row[r].append((s.ts, s.value))
    window = rt.windows.window
    history: dict[int, list] = {}
    scored: dict[int, list] = {}
    for r, points in by_row.items():
        points.sort(key=itemgetter(0))  # stable: points of one timestamp keep their order
        kept = [points[0]]
        for point in points[1:]:
            if point[0] == kept[-1][0]:
                kept[-1] = point  # the last value of a timestamp, as the store keeps it
            else:
                kept.append(point)
        key = rt.windows.keys[r]
        skips.add("repeated_timestamp", len(points) - len(kept), key)
        if len(kept) > MAX_SCORED:
            older = kept[:-MAX_SCORED]
            skips.add("too_many_points", len(older), key)
            history[r] = older[-window:]
            kept = kept[-MAX_SCORED:]
        scored[r] = kept
    yield from _depth(history, False)
    yield from _depth(scored, True)


def _depth(points_by_row: dict[int, list], scored: bool):
    """Layer k holds the k-th point of every series that has one."""
    depth = max((len(v) for v in points_by_row.values()), default=0)
    for k in range(depth):
        layer = [(r, v[k]) for r, v in points_by_row.items() if len(v) > k]
        yield (np.array([r for r, _ in layer], dtype=np.int64),
               np.array([p[0] for _, p in layer], dtype=float),
               np.array([p[1] for _, p in layer], dtype=float), scored)
