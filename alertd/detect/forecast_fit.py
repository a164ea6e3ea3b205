"""Fitting the default forecast model for every series of a rule at once (numpy only).

The model is a **seasonal profile with exponential smoothing**: each series is put on a grid
of *knots* (bin means of at most 5 minutes; a slower series keeps its own step), its daily or
weekly rhythm is the median offset of each slot of the day (week) over the training span
(kept only when the profile of the older history explains at least 15 % of the variance of
the most recent period, out of sample: the rule `alertd.detect.features.fit_norm` uses), and
what is left is followed by simple exponential smoothing, its smoothing factor chosen per
series from a grid by the smallest one-step error. The forecast is the smoothed level plus
the profile of each future slot.

Everything is vectorised over series: one grid (n series x T knots) for the rule, profiles by
a sorted median over the slot axis, the smoothing one loop over time on (factors x series)
arrays. 10,000 series of a week at 5-minute knots fit in a few seconds without long GIL holds
(bench/forecast.py).

`flow="drops"` ("rises") fits what the series loses (gains) per knot instead of its level:
the sales of a stock, with the jumps the other way (deliveries) and the steps at its lowest
value (sold out: demand unseen) left out. The stored path is then the cumulative flow, and a
level is forecast as "the latest value minus what will flow out from now" (alertd/detect/forecast.py).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .forecast import ANCHOR, ForecastModel, two_sided_z
from .robust import MAD_SCALE, nan_median_rows
from .seasons import DAY, WEEK

KNOTS = (300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0)
SLOT_WIDTH = {DAY: 300.0, WEEK: 1800.0}  # narrowest profile slot: 288 a day, 336 a week
ALPHAS = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0])
MIN_R2 = 0.15  # share of the last period's variance the older profile must explain
WEEKLY_MARGIN = 0.05  # a weekly profile must beat the daily one by this much R2
BURN_IN = 6  # knots of smoothing before its errors count
CLIP = 3.0  # robust standard deviations an error may move the level by (Huber's clip)


def knot_for(step: float) -> float:
    """The grid step for data arriving every `step` seconds: 5 minutes or the next round
    step at or above it (a path of 1-minute knots costs 5x more to search at every poll)."""
    return next((k for k in KNOTS if k >= step * 0.999), KNOTS[-1])


def median_step(ts_list) -> float:
    """The median spacing of the series' points (60 s when nothing tells)."""
    steps = [np.median(np.diff(ts[-200:])) for ts in ts_list if len(ts) > 2]
    return float(np.median(steps)) if steps else 60.0


def nan_median(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Median along `axis` ignoring NaN (NaN where there is none): robust.nan_median_rows
    over the other axes."""
    a = np.moveaxis(np.asarray(a), axis, -1)
    med, _ = nan_median_rows(a.reshape(-1, a.shape[-1]))
    return med.reshape(a.shape[:-1])


def nan_quantiles(a: np.ndarray, qs) -> np.ndarray:
    """Quantiles `qs` of each row of `a` ignoring NaN -> (n, len(qs)) (NaN for empty rows)."""
    srt = np.sort(a, axis=1)
    count = np.isfinite(srt).sum(axis=1)
    out = np.full((a.shape[0], len(qs)), np.nan)
    has = count > 0
    for j, q in enumerate(qs):
        pos = q * np.maximum(count - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
        frac = pos - lo
        a_lo = np.take_along_axis(srt, lo[:, None], 1)[:, 0]
        a_hi = np.take_along_axis(srt, hi[:, None], 1)[:, 0]
        out[has, j] = (a_lo + frac * (a_hi - a_lo))[has]
    return out


CHUNK = 1000  # series gridded at a time (bounds the memory of the flattened points)


class Grid:
    """Every series of a rule on one grid: `values` (n, T) float32 per knot, NaN where nothing
    usable; knot j starts at `start + j * knot`. `spread` is each series' spread of its points
    within a knot (0 when a knot holds one point), `shift` where inside its knot a point lies
    on average."""

    def __init__(self, ts_list, values_list, knot: float, end: float, span: float, flow: str = "none"):
        n = len(ts_list)
        self.knot = knot
        T = max(int(math.ceil(span / knot)), 2)
        last_start = math.floor(end / knot) * knot
        self.start = last_start - (T - 1) * knot
        self.T, self.n = T, n
        self.values = np.full((n, T), np.nan, dtype=np.float32)
        self.spread = np.zeros(n)
        shifts = []
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            lengths = np.array([len(t) for t in ts_list[lo:hi]], dtype=np.int64)
            if not lengths.sum():
                continue
            ts = np.concatenate(ts_list[lo:hi]).astype(float)
            vals = np.concatenate(values_list[lo:hi]).astype(float)
            row = np.repeat(np.arange(hi - lo), lengths)
            if flow == "none":
                self.values[lo:hi], self.spread[lo:hi], shift = self._level(ts, vals, row, hi - lo)
                shifts.append((shift, len(ts)))
            else:
                self.values[lo:hi] = self._flow(ts, vals, row, lengths, flow)
        weight = sum(w for _, w in shifts)
        self.shift = sum(s * w for s, w in shifts) / weight if weight else 0.0

    def _bin(self, ts: np.ndarray) -> np.ndarray:
        return np.floor((ts - self.start) / self.knot).astype(np.int64)

    def _level(self, ts, vals, row, n):
        T = self.T
        j = self._bin(ts)
        keep = (j >= 0) & (j < T) & np.isfinite(vals)
        j, v, r = j[keep], vals[keep], row[keep]
        idx = r * T + j
        count = np.bincount(idx, minlength=n * T).astype(float)
        total = np.bincount(idx, weights=v, minlength=n * T)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        mean[count == 0] = np.nan
        shift = float(np.mean(ts[keep] - self.start - j * self.knot)) if len(j) else 0.0
        spread = np.zeros(n)
        if len(v) and (count > 1).any():  # several points a knot: how far they stray from its mean
            squares = np.bincount(idx, weights=v * v, minlength=n * T)
            within = np.where(count > 1, squares - total * np.nan_to_num(mean), 0.0).reshape(n, T).sum(axis=1)
            dof = (count - (count > 0)).reshape(n, T).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                spread = np.sqrt(np.maximum(np.where(dof > 0, within / np.maximum(dof, 1), 0.0), 0.0))
        return mean.reshape(n, T), spread, shift

    def _flow(self, ts, vals, row, lengths, flow) -> np.ndarray:
        """Per knot, what the series lost (drops) or gained (rises), as a rate times the knot."""
        n, T = len(lengths), self.T
        if len(vals) < 2:
            return np.full((n, T), np.nan)
        same = row[1:] == row[:-1]
        change = vals[1:] - vals[:-1]
        d = -change if flow == "drops" else change
        ends = np.cumsum(lengths)
        starts = ends - lengths
        nonempty = lengths > 0
        bound = np.full(n, np.nan)  # the lowest (drops) or highest (rises) value seen: censored there
        if nonempty.any():
            fin = np.where(np.isfinite(vals), vals, np.inf if flow == "drops" else -np.inf)
            red = np.minimum if flow == "drops" else np.maximum
            bound[nonempty] = red.reduceat(fin, starts[nonempty])
        after = vals[1:]
        at_bound = after <= bound[row[1:]] if flow == "drops" else after >= bound[row[1:]]
        dt = ts[1:] - ts[:-1]
        ok = same & np.isfinite(d) & (d >= 0) & ~at_bound & (dt > 0)
        j = self._bin(ts[1:])
        ok &= (j >= 0) & (j < T)
        idx = row[1:][ok] * T + j[ok]
        amount = np.bincount(idx, weights=d[ok], minlength=n * T)
        seconds = np.bincount(idx, weights=dt[ok], minlength=n * T)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = amount / seconds * self.knot
        rate[seconds == 0] = np.nan
        return rate.reshape(n, T)

    def slots(self, period: float, utc_offset: float) -> tuple[np.ndarray, int]:
        """(slot of each knot, slots per period) for a daily or weekly profile."""
        width = max(self.knot, SLOT_WIDTH[period])
        count = int(round(period / width))
        times = self.start + np.arange(self.T) * self.knot + utc_offset
        return (np.mod(times, period) // width).astype(np.int64) % count, count

    def profile(self, values: np.ndarray, period: float, utc_offset: float) -> np.ndarray:
        """The median of each slot's values per series -> (n, slots), NaN for empty slots.
        `values` are the grid's first columns (all of them, or the older part)."""
        width = max(self.knot, SLOT_WIDTH[period])
        count, per_slot = int(round(period / width)), int(round(width / self.knot))
        phase = ((self.start + utc_offset) % period) / self.knot
        n, T = values.shape
        if abs(phase - round(phase)) > 1e-6:  # an offset that is not a whole knot: slot by slot
            slot, _ = self.slots(period, utc_offset)
            return _profile_scattered(values, slot[:T], count)
        # whole periods side by side: pad the start to a period boundary, then one reshape
        pad, per = int(round(phase)), count * per_slot
        cycles = int(math.ceil((pad + T) / per))
        laid = np.full((n, cycles * per), np.nan, dtype=values.dtype)
        laid[:, pad:pad + T] = values
        cube = laid.reshape(n, cycles, count, per_slot).transpose(0, 2, 1, 3).reshape(n, count, cycles * per_slot)
        return nan_median(cube, axis=-1)


def _profile_scattered(values: np.ndarray, slot: np.ndarray, count: int) -> np.ndarray:
    """As Grid.profile, for grids whose knots do not line up with the slots."""
    n, T = values.shape
    per_slot = np.bincount(slot, minlength=count)
    order = np.argsort(slot, kind="stable")
    rank = np.arange(T) - np.repeat(np.cumsum(per_slot) - per_slot, per_slot)
    cube = np.full((n, count, int(per_slot.max())), np.nan, dtype=values.dtype)
    cube[:, slot[order], rank] = values[:, order]
    return nan_median(cube, axis=-1)


def seasonal_profile(grid: "Grid", Y: np.ndarray, centre: np.ndarray, period: float,
                     utc_offset: float) -> np.ndarray:
    """The rows' time-of-day (or -week) profile about `centre`: every slot filled (round the
    circle), mean zero."""
    prof = _fill_circular(grid.profile(Y - centre[:, None], period, utc_offset))
    return prof - prof.mean(axis=1, keepdims=True)


def slot_at(times: np.ndarray, period: float, knot: float, count: int) -> np.ndarray:
    """The profile slot of each time (local: `times` carry the UTC offset)."""
    return (np.mod(times, period) // max(knot, SLOT_WIDTH[period])).astype(np.int64) % count


def _fill_circular(prof: np.ndarray) -> np.ndarray:
    """Empty slots take the nearest earlier known slot (wrapping around); 0 if none is known."""
    n, count = prof.shape
    twice = np.concatenate([prof, prof], axis=1)
    idx = np.where(np.isfinite(twice), np.arange(2 * count), -1)
    idx = np.maximum.accumulate(idx, axis=1)[:, count:]
    out = np.take_along_axis(twice, np.maximum(idx, 0), axis=1)
    return np.where(idx >= 0, out, 0.0)


def _holdout_r2(grid: Grid, resid: np.ndarray, per: float, utc_offset: float, cut: int) -> np.ndarray:
    """Per series, the share of the variance of knots >= cut explained by the profile of the
    knots before it (out of sample)."""
    slot, _ = grid.slots(per, utc_offset)
    old, new = resid[:, :cut], resid[:, cut:]
    prof = _fill_circular(grid.profile(old, per, utc_offset))
    base = nan_median(old, axis=1)
    with np.errstate(invalid="ignore"):
        total = np.nanmean((new - base[:, None]) ** 2, axis=1)
        miss = np.nanmean((new - prof[:, slot[cut:]]) ** 2, axis=1)
        r2 = 1.0 - miss / total
    return np.where(np.isfinite(r2) & (total > 0), r2, -np.inf)


def detect_periods(grid: Grid, values: np.ndarray, seasonality: str, utc_offset: float) -> np.ndarray:
    """Per series: DAY, WEEK or 0 (no rhythm), by `fit_norm`'s rule on the grid."""
    n, T = values.shape
    period = np.zeros(n)
    if seasonality == "none" or n == 0:
        return period
    finite = np.isfinite(values)
    first = np.where(finite.any(axis=1), np.argmax(finite, axis=1), T)
    covered = (T - first) * grid.knot  # from the first usable knot to the end
    wanted = [p for p in (DAY, WEEK) if seasonality in ("auto", "daily" if p == DAY else "weekly")
              and p / max(grid.knot, SLOT_WIDTH[p]) >= 2]
    resid = values - nan_median(values, axis=1)[:, None]
    scores = {}
    for per in wanted:
        able = covered >= 1.98 * per
        if not able.any():
            continue
        for hold in (DAY, WEEK):
            cut = T - int(round(hold / grid.knot))
            if cut > 0 and hold >= per:
                scores[(per, hold)] = np.where(able, _holdout_r2(grid, resid, per, utc_offset, cut), -np.inf)
    if not scores:
        return period
    week_able = covered >= 1.98 * WEEK
    day = np.where(week_able, scores.get((DAY, WEEK), -np.inf), scores.get((DAY, DAY), -np.inf))
    week = scores.get((WEEK, WEEK), np.full(n, -np.inf))
    best = np.where(week > day + WEEKLY_MARGIN, WEEK, DAY)
    r2 = np.maximum(day, np.where(best == WEEK, week, -np.inf))
    keep = r2 >= MIN_R2 if seasonality == "auto" else np.isfinite(r2)
    period[keep] = best[keep]
    return period


def _smooth(D: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simple exponential smoothing of each row of D (NaN: no observation), its factor from
    ALPHAS by the smallest one-step squared error. Robust: an error beyond `CLIP` robust
    standard deviations of the series' changes moves the level as if it were that large, so
    one spike does not drag the forecast after it. Returns (alpha, final level, one-step
    errors of the chosen factor (n, T), NaN where unobserved).

    The loop runs over time on (factors x series) arrays; the data is laid out time-major so
    each step reads one contiguous row, with every buffer allocated once."""
    n, T = D.shape
    finite = np.isfinite(D)
    first = np.argmax(finite, axis=1)
    init = np.where(finite.any(axis=1), D[np.arange(n), first], 0.0).astype(float)
    changes = np.diff(D, axis=1)  # NaN where either knot is missing
    spread = MAD_SCALE * nan_median(np.abs(changes - nan_median(changes, axis=1)[:, None]), axis=1) / math.sqrt(2)
    del changes
    bad = ~(np.isfinite(spread) & (spread > 0))  # constant or too short: the spread of the values
    if bad.any():
        spread[bad] = [np.nanstd(row) if np.isfinite(row).any() else 0.0 for row in D[bad]]
    limit = CLIP * np.maximum(np.nan_to_num(spread), 1e-12)
    DT = np.ascontiguousarray(D.T, dtype=np.float32)  # (T, n)
    okT = np.isfinite(DT)
    np.nan_to_num(DT, copy=False)
    # choosing the factor: float32 (half the memory traffic; the sums only rank the factors)
    A = ALPHAS[:, None].astype(np.float32)
    lim32 = limit.astype(np.float32)
    level = np.repeat(init[None, :], len(ALPHAS), axis=0).astype(np.float32)
    sse = np.zeros((len(ALPHAS), n), dtype=np.float32)
    neg32 = -lim32
    e, sq = np.empty_like(level), np.empty_like(level)
    for t in range(T):
        np.subtract(DT[t], level, out=e)
        e *= okT[t]  # no observation: no error, no move
        if t >= BURN_IN:
            np.multiply(e, e, out=sq)
            sse += sq
        np.minimum(e, lim32, out=e)  # (two ufuncs: np.clip costs 10x their overhead a call)
        np.maximum(e, neg32, out=e)
        e *= A
        level += e
    alpha = ALPHAS[np.argmin(sse, axis=0)]
    level = init.copy()
    errors = np.full((T, n), np.nan, dtype=np.float32)
    e1 = np.empty(n)
    negative = -limit
    for t in range(T):
        np.subtract(DT[t], level, out=e1)
        ok = okT[t]
        errors[t, ok] = e1[ok]
        e1 *= ok
        np.minimum(e1, limit, out=e1)
        np.maximum(e1, negative, out=e1)
        e1 *= alpha
        level += e1
    errors[:BURN_IN] = np.nan
    return alpha, level, np.ascontiguousarray(errors.T)


def out_of_sample_factor(grid: Grid, Y: np.ndarray, period: np.ndarray) -> np.ndarray:
    """How much wider errors are on new data than on the training data (by series): a slot's
    median of c values misses its true value by about sqrt(pi / 2c) errors, and each poll's
    re-anchoring adds the noise of its offset (ANCHOR / (2 - ANCHOR) of a variance)."""
    width = np.where(period == WEEK, max(grid.knot, SLOT_WIDTH[WEEK]), max(grid.knot, SLOT_WIDTH[DAY]))
    slots = np.where(period > 0, np.maximum(period / width, 1.0), 1.0)
    per_slot = np.isfinite(Y).sum(axis=1) / slots
    profile = np.where(period > 0, math.pi / (2.0 * np.maximum(per_slot, 1.0)), 0.0)
    return np.sqrt(1.0 + profile + ANCHOR / (2.0 - ANCHOR))


def fit_profile(keys, ts_list, values_list, *, end: float, span: float, horizon: float, level: float = 0.99,
                seasonality: str = "auto", utc_offset: float = 0.0, flow: str = "none",
                step: float | None = None, min_knots: int = 6) -> ForecastModel | None:
    """Fit the profile model to every series (see the module docstring) and forecast
    `horizon` seconds past `end` (data time). Series with fewer than `min_knots` usable knots
    are left out; None when none is left."""
    started = time.perf_counter()
    step = median_step(ts_list) if step is None else step
    grid = Grid(ts_list, values_list, knot_for(step), end, span, flow)
    Y = grid.values
    usable = np.isfinite(Y).sum(axis=1) >= min_knots
    if not usable.any():
        return None
    keep = np.flatnonzero(usable)
    Y = Y[keep]
    n, T = Y.shape
    period = detect_periods(grid, Y, seasonality, utc_offset)
    profile_at = np.zeros((n, T))  # the profile's offset at each knot of the grid
    H = int(math.ceil(horizon / grid.knot)) + 2
    future = np.zeros((n, H))  # ... and at each knot of the path (knot T-1 onwards)
    centre = nan_median(Y, axis=1)
    for per in (DAY, WEEK):
        rows = np.flatnonzero(period == per)
        if not len(rows):
            continue
        slot, count = grid.slots(per, utc_offset)
        prof = seasonal_profile(grid, Y[rows], centre[rows], per, utc_offset)
        profile_at[rows] = prof[:, slot]
        times = grid.start + (T - 1 + np.arange(H)) * grid.knot + utc_offset
        future[rows] = prof[:, slot_at(times, per, grid.knot, count)]
    alpha, last_level, errors = _smooth(Y - profile_at)
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(np.nanmean(errors.astype(float) ** 2, axis=1))
    sigma = np.where(np.isfinite(sigma), sigma, np.nan_to_num(np.nanstd(Y, axis=1)))
    path = last_level[:, None] + future  # knot T-1 (the last, maybe partial) onwards
    if flow == "none":
        q = nan_quantiles(errors, ((1 - level) / 2, (1 + level) / 2))
        q = np.where(np.isfinite(q), q, np.column_stack([-sigma, sigma]) * 2.576)
        z = two_sided_z(level)
        # points of a knot stray from its mean too: widen the band by that spread (quadrature)
        extra = (z * grid.spread[keep])[:, None]
        band = np.sign(q) * np.sqrt(q * q + extra * extra) * out_of_sample_factor(grid, Y, period)[:, None]
        origin = grid.start + (T - 1) * grid.knot + grid.shift
    else:
        rate = np.maximum(path, 0.0)  # a flow does not turn around
        path = np.concatenate([np.zeros((n, 1)), np.cumsum(rate[:, :-1], axis=1)], axis=1)
        band = np.column_stack([-sigma, sigma]) * two_sided_z(level)
        origin = grid.start + (T - 1) * grid.knot
    names = np.where(period == DAY, "daily", np.where(period == WEEK, "weekly", "")).tolist()
    return ForecastModel(
        keys=[keys[i] for i in keep], origin=origin, knot=grid.knot, path=path.astype(np.float32),
        sigma=sigma.astype(np.float32), alpha=alpha.astype(np.float32), band=band.astype(np.float32),
        period=period, flow=flow, model="profile", seasons=names, fitted_at=end,
        fit_seconds=time.perf_counter() - started, train_points=int(sum(len(ts_list[i]) for i in keep)))
