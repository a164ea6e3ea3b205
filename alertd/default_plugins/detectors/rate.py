"""The `rate` detector: the value changes faster than a bound (per minute, in data time).

A sudden drop of orders or a jump of errors is a change per minute above a limit: `rise`
bounds how fast the value may grow, `drop` how fast it may fall (both positive numbers per
minute). The change is measured over `over` (from the newest point at least that old; 0:
since the previous point); with `relative: true` it is a fraction of the earlier value
(0.5 = 50 % per minute), which suits series of very different sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alertd import hookimpl
from alertd.base import Detector
from alertd.config.schema import Duration, ParamError
from alertd.model import Batch, Scores, Status


class Rate(Detector):
    """Fires when the change per minute exceeds `rise` (upwards) or `drop` (downwards)."""

    type_name = "rate"

    @dataclass(frozen=True)
    class Params:
        """`rise`/`drop`: largest allowed change per minute; `over`: the span to measure it."""

        rise: float | None = None
        drop: float | None = None
        over: Duration = Duration(0)
        relative: bool = False
        window: int = 30

        def check(self) -> None:
            if self.rise is None and self.drop is None:
                raise ValueError("a rate needs rise, drop or both (the largest change per minute)")
            for name in ("rise", "drop"):
                value = getattr(self, name)
                if value is not None and value <= 0:
                    raise ParamError(name, f"{name} is a positive change per minute, got {value:g}")
            if self.over < 0:
                raise ParamError("over", "over must not be negative")
            if self.window < 1:
                raise ParamError("window", f"window must be at least 1 point, got {self.window}")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.window = params.window
        self.min_history = 2

    def score(self, batch: Batch) -> Scores:
        p, n = self.params, len(batch)
        values = np.asarray(batch.values, dtype=float)
        ts = np.asarray(batch.ts, dtype=float)
        hist = np.asarray(batch.history, dtype=float).reshape(n, -1)
        hist_ts = np.asarray(batch.history_ts, dtype=float).reshape(n, -1)
        # the reference point: the newest finite point at least `over` older than this one
        usable = np.isfinite(hist) & np.isfinite(hist_ts) & (hist_ts <= (ts - p.over)[:, None])
        has_ref = usable.any(axis=1)
        col = hist.shape[1] - 1 - np.argmax(usable[:, ::-1], axis=1) if hist.shape[1] else np.zeros(n, int)
        ref = np.where(has_ref, hist[np.arange(n), col] if hist.shape[1] else np.nan, np.nan)
        ref_ts = np.where(has_ref, hist_ts[np.arange(n), col] if hist.shape[1] else np.nan, np.nan)
        minutes = (ts - ref_ts) / 60.0
        with np.errstate(invalid="ignore", divide="ignore"):
            change = values - ref
            if p.relative:
                change = change / np.abs(ref)
            per_minute = change / minutes
        rise = np.inf if p.rise is None else p.rise
        drop = np.inf if p.drop is None else p.drop
        with np.errstate(invalid="ignore"):
            ratio = np.where(per_minute >= 0, per_minute / rise, -per_minute / drop)
            anomalous = ratio > 1.0
        finite = np.isfinite(values)
        status = np.where(anomalous, Status.ANOMALOUS, Status.OK).astype(np.int8)
        status[~has_ref | ~np.isfinite(per_minute)] = Status.WARMING_UP
        status[self.warming_up(batch)] = Status.WARMING_UP
        status[~finite] = Status.SKIPPED
        judged = (status == Status.OK) | (status == Status.ANOMALOUS)
        score = np.where(judged, -np.expm1(-np.log(2.0) * np.nan_to_num(ratio, nan=0.0)), np.nan)
        scale = np.abs(ref) if p.relative else 1.0
        lower = np.where(judged & np.isfinite(drop), ref - drop * minutes * scale, np.nan)
        upper = np.where(judged & np.isfinite(rise), ref + rise * minutes * scale, np.nan)
        context = [f"for a change from {r:.4g} in {m:.3g} min" if j else ""
                   for r, m, j in zip(ref.tolist(), minutes.tolist(), judged.tolist())]
        return Scores(status=status, score=score, threshold=np.full(n, 0.5), lower=lower, upper=upper,
                      context=context)


@hookimpl
def register_detectors(register):
    register(Rate)
