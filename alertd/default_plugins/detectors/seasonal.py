"""The `seasonal` detector: compare each point with the same slot of past weeks (or days).

The baseline of a slot (by default the hour of the week: "Tue 14:00-15:00") is the median of
the series' values in that slot over the stored history, and its spread the MAD. A point is
anomalous more than `k` robust standard deviations away: the Sunday-night dip is compared
with past Sunday nights, so it does not fire, while a collapse at Tuesday noon does.
The baseline is learned beside the hot path (the trainer refits it, by default hourly) from
up to `weeks` of history, leaving out points inside firing incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from alertd import hookimpl
from alertd.base import Detector, TrainingPlan, TrainingSet
from alertd.config.schema import Duration, ParamError
from alertd.detect.robust import MAD_SCALE, score_from_z
from alertd.detect.seasons import DAY, WEEK, slot_text, utc_offset
from alertd.detect.series_memory import SeriesMemory
from alertd.model import Batch, Scores, Status

SCORE_THRESHOLD = 0.5
PRIOR_POINTS = 6.0  # weight of the series' typical spread in each slot's spread


@dataclass
class SlotBaseline:
    """Per series and slot: median and robust scale, learned from history."""

    keys: list[str]
    median: np.ndarray  # (n, slots); NaN where a slot has too few values
    scale: np.ndarray  # (n, slots)
    offset: float  # seconds added to timestamps before slotting (timezone)
    fitted_at: float
    points: int

    def __post_init__(self):
        self.index = {k: i for i, k in enumerate(self.keys)}


class Seasonal(Detector):
    """Fires outside `k` MADs of the median of the same weekday-and-hour slot in past weeks."""

    type_name = "seasonal"
    trainable = True

    @dataclass(frozen=True)
    class Params:
        """`period`: weekly or daily slots of width `slot`; `k`: MADs allowed; `weeks`: history."""

        period: Literal["weekly", "daily"] = "weekly"
        slot: Duration = Duration(3600)
        k: float = 4.0
        direction: Literal["both", "up", "down"] = "both"
        weeks: float = 4.0
        min_periods: float = 2.0
        min_slot_points: int = 3
        timezone: str = "UTC"
        retrain: Duration = Duration(3600)
        max_points: int = 50_000
        min_scale_ratio: float = 0.25

        def check(self) -> None:
            per = WEEK if self.period == "weekly" else DAY
            if self.slot <= 0 or per % self.slot:
                raise ParamError("slot", f"slot must divide the {self.period} period evenly (e.g. 15m, 30m, 1h), "
                                 f"got {self.slot:g}s")
            if self.k <= 0:
                raise ParamError("k", f"k must be above 0, got {self.k:g}")
            if self.min_periods < 1 or self.weeks * WEEK < self.min_periods * per:
                raise ValueError("min_periods must be at least 1 and weeks must cover min_periods periods")
            if self.min_slot_points < 1 or self.max_points < 10:
                raise ValueError("min_slot_points must be at least 1 and max_points at least 10")
            if self.retrain <= 0:
                raise ParamError("retrain", "retrain must be a duration above 0s")
            try:
                utc_offset(self.timezone, 0.0)
            except Exception:
                raise ParamError("timezone", f'unknown timezone "{self.timezone}"; use a name like UTC or Europe/Berlin') from None

    def __init__(self, params, context):
        super().__init__(params, context)
        self.period = WEEK if params.period == "weekly" else DAY
        self.slots = int(self.period // params.slot)
        self.window = 0
        self.min_history = 1
        self.baseline: SlotBaseline | None = None
        self._texts: dict = {}
        self.first_seen = SeriesMemory(ts=np.nan)  # to ask for a fit only once a series can have a baseline

    def forget_series(self, keys: list[str]) -> None:
        self.first_seen.forget(keys)  # (the baseline drops them at its next fit)

    # -- training ------------------------------------------------------------------------------
    def training_plan(self) -> TrainingPlan:
        return TrainingPlan(points=self.params.max_points, every=self.params.retrain,
                            span=self.params.weeks * WEEK, min_span=self.params.min_periods * self.period)

    def fit(self, data: TrainingSet) -> SlotBaseline | None:
        p = self.params
        offset = utc_offset(p.timezone, data.now)
        keys, medians, scales, total = [], [], [], 0
        for key, ts, values in zip(data.keys, data.ts, data.values):
            ok = np.isfinite(ts) & np.isfinite(values)
            ts, values = ts[ok], values[ok]
            if len(ts) < 2 or ts[-1] - ts[0] < p.min_periods * self.period * 0.98:
                continue
            slot = (np.mod(ts + offset, self.period) // p.slot).astype(np.int64)
            med, scale = np.full(self.slots, np.nan), np.full(self.slots, np.nan)
            count = np.zeros(self.slots)
            order = np.argsort(slot, kind="stable")
            bounds = np.searchsorted(slot[order], np.arange(self.slots + 1))
            for s in range(self.slots):
                v = values[order[bounds[s]:bounds[s + 1]]]
                count[s] = len(v)
                if len(v) >= p.min_slot_points:
                    med[s] = np.median(v)
                    scale[s] = MAD_SCALE * np.median(np.abs(v - med[s]))
            if np.isnan(med).all():
                continue
            # A slot has only a few values (one per past week): its own spread is a noisy
            # estimate, so it is shrunk towards the series' typical spread (PRIOR_POINTS
            # pseudo-values; the typical spread pools every slot's residuals, corrected for
            # measuring them from a median of few values) and floored, so a slot whose
            # values happened to agree does not make every change infinitely anomalous.
            # Then it is widened for predicting a new value from the median of `count`.
            resid = values - med[slot]
            c = max(float(np.median(count[count > 0])), 2.0)
            typical = MAD_SCALE * float(np.nanmedian(np.abs(resid))) * np.sqrt(c / (c - 1))
            typical = typical if typical > 0 else float(np.nanmedian(scale))
            shrunk = np.sqrt((count * scale ** 2 + PRIOR_POINTS * typical ** 2) / (count + PRIOR_POINTS))
            shrunk = shrunk * np.sqrt(1 + np.pi / (2 * np.maximum(count, 1)))
            floor = max(p.min_scale_ratio * typical, 1e-3 * float(np.nanmedian(np.abs(med))), 1e-9)
            keys.append(key)
            medians.append(med)
            scales.append(np.maximum(shrunk, floor))
            total += len(ts)
        if not keys:
            return None
        return SlotBaseline(keys, np.array(medians), np.array(scales), offset, data.now, total)

    def install(self, model: SlotBaseline | None) -> None:
        if model is not None:
            self.baseline = model
            self.fit_wanted = False

    def model_info(self) -> dict:
        b = self.baseline
        return {} if b is None else {"series": len(b.keys), "points": b.points, "fitted_at": b.fitted_at,
                                     "slots": self.slots}

    # -- scoring -------------------------------------------------------------------------------
    def score(self, batch: Batch) -> Scores:
        p, n = self.params, len(batch)
        values = np.asarray(batch.values, dtype=float)
        ts = np.asarray(batch.ts, dtype=float)
        b = self.baseline
        rows = np.fromiter((b.index.get(k, -1) for k in batch.keys), dtype=np.int64, count=n) if b else \
            np.full(n, -1, dtype=np.int64)
        med, scale = np.full(n, np.nan), np.full(n, np.nan)
        covered = rows >= 0
        if covered.any():
            slot = (np.mod(ts[covered] + b.offset, self.period) // p.slot).astype(np.int64)
            med[covered] = b.median[rows[covered], slot]
            scale[covered] = b.scale[rows[covered], slot]
        known = np.isfinite(med)
        if (~covered).any():
            first = self.first_seen["ts"]
            rows_f = self.first_seen.rows(batch.keys)
            new = np.isnan(first[rows_f])
            first[rows_f[new]] = ts[new]
            old_enough = ts - first[rows_f] >= p.min_periods * self.period * 0.98
            if (~covered & old_enough).any():
                self.fit_wanted = True  # a series with enough history but no baseline yet
        with np.errstate(invalid="ignore"):
            signed = (values - med) / scale
        z = np.abs(signed) if p.direction == "both" else signed if p.direction == "up" else -signed
        z = np.nan_to_num(z, nan=0.0)
        finite = np.isfinite(values)
        status = np.where(z > p.k, Status.ANOMALOUS, Status.OK).astype(np.int8)
        status[~known] = Status.WARMING_UP
        status[known & ~finite] = Status.SKIPPED
        judged = (status == Status.OK) | (status == Status.ANOMALOUS)
        score = np.where(judged, score_from_z(z, p.k), np.nan)
        lower = np.where(known & (p.direction != "up"), med - p.k * scale, np.nan)
        upper = np.where(known & (p.direction != "down"), med + p.k * scale, np.nan)
        context = [""] * n
        if b is not None:
            for i in np.flatnonzero(known):
                minute = (ts[i] + b.offset) // 60
                text = self._texts.get(minute)
                if text is None:
                    text = self._texts[minute] = slot_text(self.period, minute * 60)
                context[i] = text
            if len(self._texts) > 10_000:
                self._texts.clear()
        return Scores(status=status, score=score, threshold=np.full(n, SCORE_THRESHOLD), lower=lower,
                      upper=upper, context=context)


@hookimpl
def register_detectors(register):
    register(Seasonal)
