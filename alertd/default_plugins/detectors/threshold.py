"""The `threshold` detector: static limits with hysteresis.

A point is anomalous above `above` or below `below`. Once a series is anomalous it stays so
until it is back within the clear levels (`clear_above`, `clear_below`, default the trigger
levels), which keeps a value hovering at the limit from flapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alertd import hookimpl
from alertd.base import Detector
from alertd.model import Batch, Scores, Status


class Threshold(Detector):
    """Fires when a value is above `above` or below `below`; clears at the clear levels.

    The score is 1 while breaching and 0 otherwise (threshold 0.5); the expected range is
    the band between the trigger levels (NaN on an unbounded side), also while recovering:
    "expected" in a notice is the line that fires (`above: 0.8, clear_above: 0.6` says
    `expected <= 0.8`), never the clear level, which on-call would take for the alert line.
    """

    type_name = "threshold"

    @dataclass(frozen=True)
    class Params:
        """`above`/`below`: trigger levels; `clear_above`/`clear_below`: levels to recover."""

        above: float | None = None
        below: float | None = None
        clear_above: float | None = None
        clear_below: float | None = None
        min_history: int = 1

        def check(self) -> None:
            if self.above is None and self.below is None:
                raise ValueError("a threshold needs above, below or both; add one of them")
            if self.min_history < 1:
                raise ValueError(f"min_history must be at least 1, got {self.min_history}")
            if self.above is not None and self.below is not None and self.below >= self.above:
                raise ValueError(f"below ({self.below:g}) must be less than above ({self.above:g}), "
                                 "or every value would breach")
            if self.clear_above is not None:
                if self.above is None:
                    raise ValueError("clear_above only makes sense with above; add above or remove it")
                if self.clear_above > self.above:
                    raise ValueError(f"clear_above ({self.clear_above:g}) must not exceed above "
                                     f"({self.above:g}); it is the level a breach recovers at")
            if self.clear_below is not None:
                if self.below is None:
                    raise ValueError("clear_below only makes sense with below; add below or remove it")
                if self.clear_below < self.below:
                    raise ValueError(f"clear_below ({self.clear_below:g}) must not be under below "
                                     f"({self.below:g}); it is the level a breach recovers at")
            lo, hi = self.levels(clear=True)
            if lo >= hi:
                raise ValueError(f"the clear levels overlap (clear_below {lo:g} >= clear_above {hi:g}), "
                                 "so an alert could never clear; move them apart")

        def levels(self, clear: bool = False) -> tuple[float, float]:
            """(lower, upper) allowed levels, -inf/inf where unbounded."""
            lo = -np.inf if self.below is None else self.below
            hi = np.inf if self.above is None else self.above
            if clear:
                lo = lo if self.clear_below is None else self.clear_below
                hi = hi if self.clear_above is None else self.clear_above
            return float(lo), float(hi)

    def __init__(self, params, context):
        super().__init__(params, context)
        self.min_history = params.min_history
        self.window = 0
        self._trigger = params.levels()
        self._clear = params.levels(clear=True)

    def score(self, batch: Batch) -> Scores:
        values = np.asarray(batch.values, dtype=float)
        was = np.asarray(batch.was_anomalous, dtype=bool)
        lo = np.where(was, self._clear[0], self._trigger[0])
        hi = np.where(was, self._clear[1], self._trigger[1])
        finite = np.isfinite(values)
        with np.errstate(invalid="ignore"):
            breach = finite & ((values > hi) | (values < lo))
        status = np.where(breach, Status.ANOMALOUS, Status.OK).astype(np.int8)
        status[self.warming_up(batch)] = Status.WARMING_UP
        status[~finite] = Status.SKIPPED
        judged = (status == Status.OK) | (status == Status.ANOMALOUS)
        score = np.where(judged, breach.astype(float), np.nan)
        n = len(values)
        low, high = (v if np.isfinite(v) else np.nan for v in self._trigger)
        return Scores(status=status, score=score, threshold=np.full(n, 0.5),
                      lower=np.full(n, low), upper=np.full(n, high))


@hookimpl
def register_detectors(register):
    register(Threshold)
