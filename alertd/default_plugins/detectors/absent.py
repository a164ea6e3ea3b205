"""The `absent` detector: a series that sends nothing for `after` is anomalous.

An outage often looks like silence: the payment provider stops reporting, a region's order
counter stops moving. The detector notes when each series last delivered a point (daemon
clock) and is asked by the engine, after every poll and every few seconds, about the series
that delivered nothing; a silence of `after` or longer is ANOMALOUS with the reason "no
data for 7m". The first point after the silence is OK again, which resolves the incident.
After a restart, silence is counted from the start, so a series gets `after` to report in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alertd import hookimpl
from alertd.base import Detector
from alertd.config.schema import Duration, ParamError
from alertd.detect.series_memory import SeriesMemory
from alertd.model import Batch, Scores, Status


def human_duration(seconds: float) -> str:
    """90 -> '1m30s', 7200 -> '2h', 45 -> '45s'."""
    seconds = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)


class Absent(Detector):
    """Fires when a series has sent no point for `after` (daemon clock)."""

    type_name = "absent"
    checks_absence = True

    @dataclass(frozen=True)
    class Params:
        """`after`: how long a series may stay silent before it is an anomaly."""

        after: Duration = Duration(300)

        def check(self) -> None:
            if self.after <= 0:
                raise ParamError("after", "after must be a duration above 0s, such as 5m")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.window = 1
        self.min_history = 1
        self.memory = SeriesMemory(arrived=np.nan)

    def score(self, batch: Batch) -> Scores:
        """A point arrived: the series is not silent."""
        n = len(batch)
        rows = self.memory.rows(batch.keys)
        self.memory["arrived"][rows] = self.context.now()
        status = np.full(n, Status.OK, dtype=np.int8)
        return Scores(status, np.zeros(n), np.full(n, 0.5), np.full(n, np.nan), np.full(n, np.nan),
                      [""] * n)

    def forget_series(self, keys: list[str]) -> None:
        self.memory.forget(keys)

    def score_absent(self, batch: Batch, now: float) -> Scores:
        n = len(batch)
        rows = self.memory.rows(batch.keys)
        arrived = self.memory["arrived"]
        unseen = np.isnan(arrived[rows])
        arrived[rows[unseen]] = now  # first check (e.g. after a restart): the clock starts now
        silence = now - arrived[rows]
        after = float(self.params.after)
        silent = silence >= after
        status = np.where(silent, Status.ANOMALOUS, Status.OK).astype(np.int8)
        score = -np.expm1(-np.log(2.0) * silence / after)  # 0.5 at `after`
        context = [f"no data for {human_duration(s)} (allowed: {human_duration(after)})" if hit else ""
                   for s, hit in zip(silence, silent)]
        return Scores(status, score, np.full(n, 0.5), np.full(n, np.nan), np.full(n, np.nan), context)


@hookimpl
def register_detectors(register):
    register(Absent)
