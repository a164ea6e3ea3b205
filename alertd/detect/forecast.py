"""Forecasts as detectors use them at every poll: the stored paths, and from them the expected
value, the prediction interval, and when a line will be crossed.

A fit (alertd/detect/forecast_fit.py, or a forecasting library in a worker process,
alertd/detect/forecast_library.py) stores per series a *path*: the forecast at knots
`origin + k * knot` (k = 0, 1, ...), long enough to last until the next fit plus the warning
horizon, the one-step error `sigma` and how fast the error grows with the lead (`alpha`, or
explicit `spreads` per lead), and the band of the anomaly interval. No model object is kept:
a few floats a knot (672 bytes a series for a 7-hour path of 5-minute knots).

Between fits each poll *re-anchors* the path on the latest data: a running offset `r` (the
exponentially smoothed gap between the values and the path, `ANCHOR` per poll) is added, so
the shape comes from the model and the level from today ("at today's sales"). A flow path
(`flow: drops`) is cumulative: the level ahead is the latest value minus what flows out from
now, so it is anchored on the latest value by construction.

The crossing search is vectorised over the series of a poll: the bound (the central path, or
with a confidence the interval's side towards the line) at every knot within the horizon, the
first knot past the line, and the time interpolated between it and the knot before (so
5-minute knots still give a minute: "in about 2 h 40 (at 17:25 UTC)").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

ANCHOR = 0.3  # share of the latest gap between value and path taken into the offset per poll


@dataclass
class ForecastModel:
    """The forecasts of a rule's series (arrays over series; see the module docstring).

    `path[i, k]` is the forecast of series i at `origin + k * knot` (for a flow: what will
    have flowed from `origin` to then); `band[i]` the (low, high) offsets of the anomaly
    interval around the expected value; `seasons[i]` "daily", "weekly" or "" (none found);
    `model` what fitted it ("profile", "AutoETS", ...).
    """

    keys: list[str]
    origin: float
    knot: float
    path: np.ndarray  # (n, K) float32
    sigma: np.ndarray  # (n,) one-step error
    alpha: np.ndarray  # (n,) growth of the error with the lead (exponential smoothing's factor)
    band: np.ndarray  # (n, 2)
    period: np.ndarray  # (n,) seconds: 0, DAY or WEEK
    flow: str
    model: str
    seasons: list[str]
    fitted_at: float
    fit_seconds: float = 0.0
    train_points: int = 0
    spreads: np.ndarray | None = None  # (n, K) error by lead, where a library gave one
    excluded: int = 0
    cpu_seconds: float | None = None  # CPU time of a fit in the worker process (library models)
    index: dict = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {k: i for i, k in enumerate(self.keys)}

    def __setstate__(self, state):  # (pickled without the index)
        self.__dict__.update(state)
        self.index = {k: i for i, k in enumerate(self.keys)}

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("index", None)
        state.pop("_reach", None)
        return state

    def reach(self, line: "Line") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per series, how far the bound towards `line` can get within its horizon, anywhere on
        the stored path: (highest level, lowest level, largest error) for a level path; for a
        flow (largest amount flowing within the horizon, 0, largest error). Computed once a
        model and line (cached on the model, not stored); a poll then searches only the series
        that could cross."""
        cache = self.__dict__.setdefault("_reach", {})
        key = (line.within, line.z)
        if key not in cache:
            n, K = self.path.shape
            w = min(int(math.ceil(line.within / self.knot)) + 2, K - 1)
            P = self.path.astype(float)
            if self.spreads is not None:
                err = self.spreads.max(axis=1).astype(float)
            else:
                err = self.spread(np.arange(n), np.full(n, K - 1.0), np.full(n, float(w)))
            if self.flow == "none":
                cache[key] = (P.max(axis=1), P.min(axis=1), err)
            else:
                moved = (P[:, w:] - P[:, :-w]).max(axis=1) if K > w else P[:, -1] - P[:, 0]
                cache[key] = (np.maximum(moved, 0.0), np.zeros(n), err)
        return cache[key]

    def name_of(self, i: int) -> str:
        """What forecast series i, for notices: "daily profile + smoothing", "AutoETS", ..."""
        if self.model != "profile":
            return self.model
        base = f"{self.seasons[i]} profile + smoothing" if self.seasons[i] else "exponential smoothing"
        return base + {"drops": " of its drops", "rises": " of its rises"}.get(self.flow, "")

    # -- at a poll ------------------------------------------------------------------------------
    def position(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(knot position of each point on its path, whether the path still covers it)."""
        u = (np.asarray(ts, dtype=float) - self.origin) / self.knot
        ok = u <= self.path.shape[1] - 2
        return np.clip(u, 0.0, self.path.shape[1] - 2), ok

    def at(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The path of series `rows` at fractional knot positions `u` (any shape (n, ...))."""
        u = np.asarray(u, dtype=float)
        k = np.clip(np.floor(u).astype(np.int64), 0, self.path.shape[1] - 2)
        f = u - k
        r = rows.reshape(rows.shape + (1,) * (u.ndim - 1))
        lo, hi = self.path[r, k], self.path[r, k + 1]
        return lo + f * (hi - lo)

    def spread(self, rows: np.ndarray, u: np.ndarray, lead: np.ndarray) -> np.ndarray:
        """The forecast error `lead` knots ahead of position `u`: of the level (how far the
        value may be from the path then) or, for a flow, of what flows out in between."""
        lead = np.maximum(np.asarray(lead, dtype=float), 0.0)
        shape = (-1,) + (1,) * (lead.ndim - 1)
        sigma = self.sigma[rows].astype(float).reshape(shape)
        a = self.alpha[rows].astype(float).reshape(shape)
        if self.spreads is not None:
            k = np.clip(np.round(lead).astype(np.int64), 0, self.spreads.shape[1] - 1)
            return self.spreads[rows.reshape(shape), k].astype(float)
        if self.flow == "none":
            return sigma * np.sqrt(1.0 + (np.maximum(lead, 1.0) - 1.0) * a * a)

        def cumulative(m):  # sum over i < m of (1 + a i)^2: the variance of m knots' flow
            return m + a * m * (m - 1) + a * a * (m - 1) * m * (2 * m - 1) / 6.0
        u = np.asarray(u, dtype=float).reshape(shape)
        return sigma * np.sqrt(np.maximum(cumulative(u + lead) - cumulative(u), 0.0))


@dataclass(frozen=True)
class Line:
    """A will-cross line: the level, its side (`below`: warn before the value falls under
    it), the horizon in seconds and the two-sided confidence of the bound (None: the
    central path)."""

    level: float
    below: bool
    within: float
    confidence: float | None = None

    @property
    def z(self) -> float:
        """How many errors the bound lies from the path, towards the line (0: the path)."""
        return 0.0 if self.confidence is None else two_sided_z(self.confidence)

    def beyond(self, values: np.ndarray) -> np.ndarray:
        """Whether values are past the line (crossed)."""
        with np.errstate(invalid="ignore"):
            return values < self.level if self.below else values > self.level


def two_sided_z(level: float) -> float:
    """The standard normal quantile of a two-sided `level` interval (0.99 -> 2.576)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF, by Abramowitz and Stegun's 7.1.26 for erf (absolute error
    below 1.5e-7): numpy only, so neither a tick nor `alertd validate` imports SciPy."""
    x = np.asarray(x, dtype=float)
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    with np.errstate(over="ignore", under="ignore"):
        erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def crossing(model: ForecastModel, rows: np.ndarray, ts: np.ndarray, x: np.ndarray, offset: np.ndarray,
             line: Line) -> tuple[np.ndarray, np.ndarray]:
    """When the forecast of each series reaches `line` within its horizon (NaN: not within
    it), and the probability that it is past the line at some knot within the horizon.

    `x` is the latest value, `offset` the re-anchoring offset of a level path (ignored for a
    flow). The search starts at `x` now and follows the bound knot by knot."""
    n = len(rows)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    # only series whose bound could get to the line within the horizon are searched; for the
    # others, the chance of crossing is bounded by the best the path could do
    hi, lo, err = (a[rows] for a in model.reach(line))
    sign = -1.0 if line.below else 1.0
    if model.flow == "none":
        best = (lo + offset if line.below else hi + offset)
    else:
        best = x - hi if model.flow == "drops" else x + hi
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = sign * (best - line.level) / np.maximum(err, 1e-12)  # errors by which the best gets past it
    near = ~(gap < -line.z - 1e-9)  # (NaN: searched)
    if not near.all():
        at, prob = np.full(n, np.nan), normal_cdf(np.nan_to_num(gap, nan=0.0))
        idx = np.flatnonzero(near)
        if len(idx):
            at[idx], prob[idx] = _search(model, rows[idx], ts[idx], x[idx], offset[idx], line)
        return at, prob
    return _search(model, rows, ts, x, offset, line)


def _search(model: ForecastModel, rows, ts, x, offset, line: Line) -> tuple[np.ndarray, np.ndarray]:
    """The knot-by-knot search of `crossing` over every given series."""
    n = len(rows)
    knot = model.knot
    u, _ = model.position(ts)
    steps = int(math.ceil(line.within / knot)) + 1
    k = np.floor(u)[:, None] + 1.0 + np.arange(steps)[None, :]
    k = np.minimum(k, model.path.shape[1] - 1)
    times = model.origin + k * knot
    lead = (times - ts[:, None]) / knot
    if model.flow == "none":
        central = model.at(rows, k) + offset[:, None]
    else:
        moved = model.at(rows, k) - model.at(rows, u)[:, None]
        central = x[:, None] - moved if model.flow == "drops" else x[:, None] + moved
    spread = model.spread(rows, u, lead)
    sign = -1.0 if line.below else 1.0
    bound = central + sign * line.z * spread
    inside = times <= ts[:, None] + line.within + knot  # the knot just past the horizon too
    past = line.beyond(bound) & inside
    hit = past.any(axis=1)
    first = np.argmax(past, axis=1)
    at = np.full(n, np.nan)
    idx = np.flatnonzero(hit)
    if len(idx):
        j = first[idx]
        t1, v1 = times[idx, j], bound[idx, j]
        prev = j > 0
        t0 = np.where(prev, times[idx, np.maximum(j - 1, 0)], ts[idx])
        v0 = np.where(prev, bound[idx, np.maximum(j - 1, 0)], x[idx])
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.clip((v0 - line.level) / (v0 - v1), 0.0, 1.0)
        when = t0 + np.nan_to_num(frac) * (t1 - t0)
        at[idx] = np.where(when <= ts[idx] + line.within, when, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = -sign * (line.level - central) / np.maximum(spread, 1e-12)
    z = np.where(times <= ts[:, None] + line.within, z, -np.inf)
    prob = normal_cdf(z.max(axis=1))
    return at, prob


def expected(model: ForecastModel, rows: np.ndarray, ts: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The expected value of each point: the level path re-anchored by `offset`."""
    u, _ = model.position(ts)
    return model.at(rows, u) + offset


# -- words ------------------------------------------------------------------------------------
def about(seconds: float) -> str:
    """A rounded duration for people: "4 min", "45 min", "2 h 40", "3 h", "1 day 5 h"."""
    minutes = max(seconds / 60.0, 0.0)
    if minutes < 1.5:
        return "a minute"
    if minutes < 60:
        step = 1 if minutes < 15 else 5
        return f"{int(round(minutes / step) * step)} min"
    if minutes < 48 * 60:
        total = int(round(minutes / 5) * 5)
        h, m = divmod(total, 60)
        return f"{h} h {m:02d}" if m else f"{h} h"
    days, hours = divmod(int(round(minutes / 60)), 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def clock_text(ts: float, now: float, tz: str = "UTC") -> str:
    """'17:25 UTC' (or 'Tue 17:25 CEST' in the rule's timezone, the weekday when it is more
    than 20 hours away)."""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    if tz.upper() != "UTC":
        from zoneinfo import ZoneInfo
        moment = moment.astimezone(ZoneInfo(tz))
    name = "UTC" if tz.upper() == "UTC" else moment.tzname()
    fmt = "%a %H:%M" if ts - now > 20 * 3600 else "%H:%M"
    return f"{moment:{fmt}} {name}"


def level_text(value: float) -> str:
    """A line's level as notices show it (0, 0.9, 1200, 1.5e+06)."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"
