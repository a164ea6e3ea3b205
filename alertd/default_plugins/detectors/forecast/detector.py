"""The `forecast` detector (see the package docstring): training, scoring and warnings."""

from __future__ import annotations

import dataclasses

import numpy as np

from alertd.base import Detector, RuleSetting, TrainingPlan, TrainingSet
from alertd.detect.forecast import (
    ANCHOR,
    ForecastModel,
    about,
    clock_text,
    crossing,
    expected,
    level_text,
    normal_cdf,
    two_sided_z,
)
from alertd.detect.forecast_fit import fit_profile, median_step
from alertd.detect.forecast_library import fit_library
from alertd.detect.seasons import utc_offset
from alertd.detect.series_memory import ModelRows, SeriesMemory
from alertd.detect.trend import line_fit, trend_crossing
from alertd.durations import format_duration
from alertd.model import Batch, Scores, Status

from .params import ForecastParams, setting_problems
from .view import VIEW_HORIZON, forecast_view


def outside(xs, resid, lo, hi, direction: str):
    """Which values are outside the interval [lo, hi] on the rule's side, and the interval
    as the notice shows it (only the watched end for `up` or `down`)."""
    hit = (xs > hi) | (xs < lo)
    if direction == "up":
        hit &= resid > 0
        lo = np.full(len(xs), np.nan)
    elif direction == "down":
        hit &= resid < 0
        hi = np.full(len(xs), np.nan)
    return hit, lo, hi


class Forecast(Detector):
    """Anomalies against a forecast's interval, or early warnings (`will_cross`) before a
    series reaches a line (docs/detectors.md, "forecast")."""

    type_name = "forecast"
    trainable = True
    fit_in_process = True  # reading a week of 10,000 series and fitting them: not in the daemon's GIL
    model_format = 1

    Params = ForecastParams

    @classmethod
    def check_setting(cls, params, setting: RuleSetting) -> list[tuple[str, str]]:
        return setting_problems(params, setting)

    def __init__(self, params, context):
        super().__init__(params, context)
        p = params
        self.trainable = p.model != "trend"
        self.min_history = p.min_history
        self.window = p.window if p.model == "trend" else 1
        self.line = p.will_cross.line() if p.will_cross is not None else None
        self.model: ForecastModel | None = None
        self.memory = SeriesMemory(offset=0.0, ts=np.nan, value=np.nan, slope=np.nan, intercept=np.nan,
                                   resid=np.nan, count=0.0, mean_t=0.0, sxx=0.0,  # the line's interval
                                   crossing=np.nan)
        self._model_rows = ModelRows()

    def forget_series(self, keys: list[str]) -> None:
        self.memory.forget(keys)  # (a series the model was fitted on leaves it at the next fit)

    # -- training -----------------------------------------------------------------------------
    def training_plan(self) -> TrainingPlan | None:
        p = self.params
        if p.model == "trend":
            return None
        return TrainingPlan(points=p.train_points, every=p.retrain, every_points=p.retrain_points,
                            span=float(p.train_span))

    def horizon(self, step: float) -> float:
        """How far past the fit the stored path reaches: until the next fit is surely due
        (twice the schedule) plus the warning horizon."""
        p = self.params
        until_next = max(2 * (p.retrain or 0.0), 2 * (p.retrain_points or 0) * step, 3600.0)
        return until_next + (p.will_cross.within if p.will_cross else VIEW_HORIZON)

    def fit(self, data: TrainingSet) -> ForecastModel | None:
        p = self.params
        if not len(data):
            return None
        step = median_step(data.ts)
        end = max(float(t[-1]) for t in data.ts if len(t)) if any(len(t) for t in data.ts) else data.now
        settings = dict(end=end, span=float(p.train_span), horizon=self.horizon(step), level=p.level,
                        seasonality=p.seasonality, utc_offset=utc_offset(p.timezone, end), flow=p.flow, step=step,
                        min_knots=max(2, min(p.min_history, 12)))
        if p.model == "profile":
            model = fit_profile(data.keys, data.ts, data.values, **settings)
        else:
            model = fit_library(p.model, data.keys, data.ts, data.values, **settings)
        if model is not None:
            model.excluded = data.excluded
        return model

    def install(self, model: ForecastModel | None) -> None:
        if model is not None:
            self.model = model  # one reference swap: a tick sees the old or the new model
            self.memory["offset"][:] = 0.0  # the new fit is anchored on the latest data itself
            self.fit_wanted = False

    def model_info(self) -> dict:
        m = self.model
        if m is None:
            return {"model": self.params.model} if self.params.model == "trend" else {}
        return {"model": m.model, "series": len(m.keys), "fitted_at": m.fitted_at,
                "fit_seconds": round(m.fit_seconds, 3), "train_rows": m.train_points, "excluded_points": m.excluded,
                "seasonal_series": int((m.period > 0).sum()), "knot_seconds": m.knot}

    def forecast(self, key: str) -> dict | None:
        return forecast_view(self, key)

    # -- scoring ------------------------------------------------------------------------------
    def score(self, batch: Batch) -> Scores:
        n = len(batch)
        out = dataclasses.replace(Scores.empty(n), context=[""] * n, crossing_at=np.full(n, np.nan),
                                  crossed=np.zeros(n, dtype=bool))  # filled in place below
        ready = ~self.warming_up(batch)
        values = np.asarray(batch.values, dtype=float)
        mem = self.memory.rows(batch.keys)
        finite = np.isfinite(values)
        out.status[ready & ~finite] = Status.SKIPPED
        if self.params.model == "trend":
            self._score_trend(batch, np.flatnonzero(ready & finite), mem, out)
        else:
            self._score_model(batch, ready & finite, mem, out)
        return out

    def _score_model(self, batch: Batch, judge: np.ndarray, mem: np.ndarray, out: Scores) -> None:
        m = self.model
        if m is None:
            if judge.any():
                self.fit_wanted = True
            return
        rows = self._model_rows.of(m, batch.keys)
        covered = rows >= 0
        ts, x = np.asarray(batch.ts, dtype=float), np.asarray(batch.values, dtype=float)
        _, fresh = m.position(ts)
        if (judge & (~covered | ~fresh)).any():
            self.fit_wanted = True  # a ready series without a model, or a path that ran out
        out.status[judge & covered & ~fresh] = Status.SKIPPED
        sel = np.flatnonzero(judge & covered & fresh)
        if not len(sel):
            return
        r, mrow = rows[sel], mem[sel]
        offset = self.memory["offset"]
        xs, tss = x[sel], ts[sel]
        if self.line is None:  # (a flow model always has a line: flow needs will_cross)
            self._judge_interval(m, sel, r, mrow, xs, expected(m, r, tss, offset[mrow]), out)
        else:
            if m.flow == "none":
                offset[mrow] += ANCHOR * (xs - expected(m, r, tss, offset[mrow]))
            at, prob = crossing(m, r, tss, xs, offset[mrow], self.line)
            self._warn(sel, mrow, tss, xs, at, prob, lambda j: m.name_of(int(r[j])), out)
        self.memory["ts"][mrow], self.memory["value"][mrow] = tss, xs

    def _judge_interval(self, m, sel, r, mrow, xs, exp, out) -> None:
        p = self.params
        lo, hi = exp + m.band[r, 0], exp + m.band[r, 1]
        resid = xs - exp
        z_level = two_sided_z(p.level)
        half = np.where(resid >= 0, m.band[r, 1], -m.band[r, 0]) / z_level
        with np.errstate(invalid="ignore", divide="ignore"):
            score = 2.0 * normal_cdf(np.abs(resid) / np.maximum(half, 1e-12)) - 1.0
        hit, lo, hi = outside(xs, resid, lo, hi, p.direction)
        offset = self.memory["offset"]
        offset[mrow] = np.where(hit, offset[mrow], offset[mrow] + ANCHOR * resid)
        out.status[sel] = np.where(hit, Status.ANOMALOUS, Status.OK)
        out.score[sel], out.lower[sel], out.upper[sel] = score, lo, hi
        out.threshold[:] = p.level
        for j in np.flatnonzero(hit).tolist():
            out.context[int(sel[j])] = f"(forecast by {m.name_of(int(r[j]))})"

    def _warn(self, sel, mrow, ts, xs, at, prob, name_of, out) -> None:
        """Verdicts of an early warning: ANOMALOUS while the line is reached within the
        horizon, OK otherwise; `crossed` once the value is past it. `name_of(j)`: the model
        that forecast the j-th series (asked only of those that warn)."""
        line = self.line
        crossed = line.beyond(xs)
        warn = np.isfinite(at) & ~crossed
        out.status[sel] = np.where(warn, Status.ANOMALOUS, Status.OK)
        out.score[sel] = np.where(crossed, 1.0, prob)
        out.threshold[:] = 0.5 if line.confidence is None else (1.0 - line.confidence) / 2.0
        out.crossing_at[sel] = np.where(warn, at, np.nan)
        out.crossed[sel] = crossed
        self.memory["crossing"][mrow] = out.crossing_at[sel]
        tz = self.params.timezone
        for j in np.flatnonzero(warn).tolist():
            when = float(at[j])
            out.context[int(sel[j])] = (f"expected to reach {level_text(line.level)} in about "
                                        f"{about(when - ts[j])} (at {clock_text(when, float(ts[j]), tz)}), "
                                        f"forecast by {name_of(j)}")

    def _score_trend(self, batch: Batch, sel: np.ndarray, mem: np.ndarray, out: Scores) -> None:
        if not len(sel):
            return
        p = self.params
        hist = np.asarray(batch.history, dtype=float).reshape(len(batch), -1)[sel]
        hist_ts = np.asarray(batch.history_ts, dtype=float).reshape(len(batch), -1)[sel]
        xs = np.asarray(batch.values, dtype=float)[sel]
        ts = np.asarray(batch.ts, dtype=float)[sel]
        values = np.concatenate([hist, xs[:, None]], axis=1)
        times = np.concatenate([hist_ts, ts[:, None]], axis=1)
        name = f"linear trend over {format_duration(p.range)}"
        mrow = mem[sel]
        if self.line is not None:
            fit = line_fit(values, times, ts, float(p.range))
            usable = fit.valid
            at, prob = trend_crossing(fit, ts, xs, self.line)
            self._warn(sel[usable], mrow[usable], ts[usable], xs[usable], at[usable], prob[usable],
                       lambda j: name, out)
            out.status[sel[~usable]] = Status.SKIPPED
            self._remember_line(mrow, fit)
        else:  # the line through the earlier points, at the new one
            fit = line_fit(hist, hist_ts, ts, float(p.range))
            usable = fit.valid
            exp = fit.intercept
            z_level = two_sided_z(p.level)
            half = z_level * fit.spread_at(0.0)
            lo, hi = exp - half, exp + half
            resid = xs - exp
            with np.errstate(invalid="ignore", divide="ignore"):
                score = 2.0 * normal_cdf(np.abs(resid) * z_level / np.maximum(half, 1e-12)) - 1.0
            hit, lo, hi = outside(xs, resid, lo, hi, p.direction)
            hit &= usable
            out.status[sel] = np.where(~usable, Status.SKIPPED, np.where(hit, Status.ANOMALOUS, Status.OK))
            out.score[sel], out.lower[sel], out.upper[sel] = score, lo, hi
            out.threshold[:] = p.level
            for j in np.flatnonzero(hit).tolist():
                out.context[int(sel[j])] = f"(forecast by {name})"
            full = line_fit(values, times, ts, float(p.range))
            self._remember_line(mrow, full)
        self.memory["ts"][mrow], self.memory["value"][mrow] = ts, xs

    def _remember_line(self, mrow, fit) -> None:
        """Keep each series' line and what its prediction interval needs (for forecast views)."""
        mem = self.memory
        mem["slope"][mrow], mem["intercept"][mrow], mem["resid"][mrow] = fit.slope, fit.intercept, fit.resid
        mem["count"][mrow], mem["mean_t"][mrow], mem["sxx"][mrow] = fit.count, fit.mean_t, fit.sxx
