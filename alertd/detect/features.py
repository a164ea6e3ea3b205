"""Features for model-based detectors, from a window of recent values per series.

Every feature of a point at time t is computed from a *window matrix*: one row per point,
holding the `window` values before it and the point itself (oldest first), with their
timestamps. The daemon builds it from `Batch.history` (one row per series per tick); a
backtest builds it for every row of a series at once with a sliding view. Both call the same
`point_features`, so the daemon and a replay compute identical numbers, and a feature of
row t can never see a value after t.

Features are scale-free: each series is normalised by a `SeriesNorm` learned from its
training history (robust centre and spreads, and, for series with a daily or weekly rhythm,
the typical offset of each hour-of-day or hour-of-week slot), so one model can serve many
similar series (`model_scope: rule`) and 3 a.m. is compared with 3 a.m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .robust import MAD_SCALE
from .seasons import DAY, WEEK

MAX_SLOTS = {DAY: 288, WEEK: 336}  # seasonal resolution: at least 5 min (day), 30 min (week)
FEATURES = ("level", "residual", "change", "deviation", "shift", "volatility")
SHORT = 6  # points in the short-term statistics (deviation, shift, volatility)


def robust_spread(x: np.ndarray, floor: float) -> float:
    """1.4826 * MAD of the finite values of x, at least `floor` (and 1e-9)."""
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return max(floor, 1e-9)
    dev = np.abs(x - np.median(x))
    mad = float(np.median(dev))
    if mad == 0.0:  # mostly constant: fall back to the mean absolute deviation
        mad = float(np.mean(dev)) / 1.2533
    return max(MAD_SCALE * mad, floor, 1e-9)


COMPRESS = 10.0


def signed_log(x: np.ndarray, knee: float | None = None) -> np.ndarray:
    """knee * sign(x) * log1p(|x| / knee): linear up to about `knee`, logarithmic beyond."""
    knee = COMPRESS if knee is None else knee
    if knee <= 0:
        return x
    return knee * np.sign(x) * np.log1p(np.abs(x) / knee)


@dataclass
class SeriesNorm:
    """Per-series normalisation learned at fit time (arrays over the series of a model).

    Series i has a seasonal `period[i]` (0: no rhythm, DAY or WEEK) cut into `slots[i]`
    slots; `profile[i, s]` is the median offset from `center[i]` in slot s over the training
    history ("the same slot in past days or weeks"). `scale` is the spread of values,
    `rscale` of residuals from the seasonal expectation, `dscale` of residual changes.
    """

    keys: list[str]
    center: np.ndarray
    scale: np.ndarray
    rscale: np.ndarray
    dscale: np.ndarray
    period: np.ndarray  # seconds: 0, DAY or WEEK
    slots: np.ndarray  # int, slots per period (1 without a rhythm)
    profile: np.ndarray  # (n, max slots) float32 offsets per slot
    utc_offset: float = 0.0  # seconds added to timestamps before slotting (the rule's timezone)

    def index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}

    def slot_of(self, ts: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The seasonal slot of each timestamp (rows: series `idx`); 0 without a rhythm."""
        per = np.where(self.period[idx] > 0, self.period[idx], DAY).reshape(-1, *([1] * (ts.ndim - 1)))
        width = per / self.slots[idx].reshape(per.shape)
        return (np.mod(np.nan_to_num(ts) + self.utc_offset, per) // width).astype(np.int64)

    def expected(self, ts: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Expected values at `ts` (n, m), row j belonging to series `idx[j]` (default j)."""
        ts = np.asarray(ts, dtype=float)
        idx = np.arange(len(self.center)) if idx is None else np.asarray(idx)
        out = np.repeat(self.center[idx][:, None], ts.shape[1], axis=1)
        rows = np.flatnonzero(self.period[idx] > 0)
        if len(rows):
            slot = self.slot_of(ts[rows], idx[rows])
            out[rows] += np.take_along_axis(self.profile[idx[rows]], slot, axis=1)
        return out


def grouped_median(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of `values` per group id in [0, n_groups) (NaN for empty groups), vectorised."""
    order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(n_groups, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = 0.5 * (v[lo] + v[hi])
    return out


def _seasonal(ts: np.ndarray, resid: np.ndarray, per: float, step: float, utc_offset: float):
    """(slots, profile, fitted): the median residual per slot of `per` (empty slots
    interpolated from their neighbours) and its value at each point."""
    slots = int(per // max(step, per / MAX_SLOTS[per], 60.0))
    idx = (np.mod(ts + utc_offset, per) // (per / slots)).astype(np.int64)
    prof = grouped_median(idx, resid, slots)
    known = np.flatnonzero(~np.isnan(prof))
    if len(known) < slots:
        missing = np.flatnonzero(np.isnan(prof))
        prof[missing] = np.interp(missing, known, prof[known], period=slots)
    return slots, prof, prof[idx]


def _holdout_r2(ts, resid, per: float, step: float, utc_offset: float, holdout: float) -> float:
    """Share of the variance of the last `holdout` seconds explained by the profile of the
    history before them.

    Out of sample, so a profile fitted to noise (each slot's median of a few noisy values)
    does not look like a rhythm.
    """
    cut = ts[-1] - holdout
    old, new = ts < cut, ts >= cut
    if old.sum() < 2 or new.sum() < 2:
        return 0.0
    slots, prof, _ = _seasonal(ts[old], resid[old], per, step, utc_offset)
    idx = (np.mod(ts[new] + utc_offset, per) // (per / slots)).astype(np.int64)
    total = float(np.mean((resid[new] - np.median(resid[old])) ** 2))
    return 1.0 - float(np.mean((resid[new] - prof[idx]) ** 2)) / total if total > 0 else 0.0


def fit_norm(keys: list[str], histories: list[tuple[np.ndarray, np.ndarray]], *,
             seasonality: str = "auto", utc_offset: float = 0.0, min_r2: float = 0.15) -> SeriesNorm:
    """Learn each series' normalisation from its training (ts, values).

    `seasonality`: "auto" keeps a daily or weekly profile when the history covers two
    periods and the profile of the earlier periods explains at least `min_r2` of the last
    period's variance; "daily"/"weekly" force one (once the history covers two periods),
    "none" disables it.
    """
    n = len(keys)
    center, scale, rscale, dscale = (np.ones(n) for _ in range(4))
    period, nslots = np.zeros(n), np.ones(n, dtype=np.int64)
    profiles: list[np.ndarray | None] = [None] * n
    for i, (ts, x) in enumerate(histories):
        ok = np.isfinite(x) & np.isfinite(ts)
        ts, x = ts[ok], x[ok]
        if len(x) == 0:
            center[i] = 0.0
            continue
        c = float(np.median(x))
        floor = 1e-3 * abs(c)
        center[i], scale[i] = c, robust_spread(x, floor)
        resid = x - c
        span = ts[-1] - ts[0]
        step = float(np.median(np.diff(ts))) if len(ts) > 1 else 60.0
        best = None
        candidates = [per for per in (DAY, WEEK) if span >= 1.98 * per and
                      seasonality in ("auto", "daily" if per == DAY else "weekly")]
        holdout = max(candidates, default=DAY)  # both are judged on the same last stretch
        for per in candidates:
            r2 = _holdout_r2(ts, resid, per, step, utc_offset, holdout)
            # a weekly profile must beat the daily one clearly: it has 7x the parameters
            if best is None or r2 > best[0] + 0.05:
                best = (r2, per)
        if best is not None and (seasonality != "auto" or best[0] >= min_r2):
            period[i] = best[1]
            nslots[i], profiles[i], fitted = _seasonal(ts, resid, best[1], step, utc_offset)
            resid = resid - fitted
        rscale[i] = robust_spread(resid, floor)
        dscale[i] = robust_spread(np.diff(resid), floor) if len(resid) > 2 else rscale[i]
    width = max([len(p) for p in profiles if p is not None] or [1])
    profile = np.zeros((n, width), dtype=np.float32)
    for i, p in enumerate(profiles):
        if p is not None:
            profile[i, :len(p)] = p
    return SeriesNorm(list(keys), center, scale, rscale, dscale, period, nslots, profile, utc_offset)


def point_features(values: np.ndarray, times: np.ndarray, norm: SeriesNorm,
                   idx: np.ndarray | None = None) -> np.ndarray:
    """Features of the last column of each row of a window matrix -> (n, len(FEATURES)).

    `values`/`times` are (n, w + 1): w earlier points and the point itself, oldest first,
    NaN where a series has no point (gaps and short histories are fine: statistics use the
    finite points). Row j is normalised with series `idx[j]` of `norm` (default: j).
    Residuals are taken from the seasonal expectation, so a daily step is not a change.
    """
    values = np.asarray(values, dtype=float)
    times = np.asarray(times, dtype=float)
    idx = np.arange(len(norm.center)) if idx is None else np.asarray(idx)
    x = values[:, -1]
    k = min(SHORT, values.shape[1] - 1)
    recent = values[:, -k - 1:]  # the short window, the point itself included
    with np.errstate(invalid="ignore"):
        r = (recent - norm.expected(times[:, -k - 1:], idx)) / norm.rscale[idx][:, None]
        level = (x - norm.center[idx]) / norm.scale[idx]
        residual = r[:, -1]
        finite = np.isfinite(r)
        past, pfin = r[:, :-1], finite[:, :-1]
        cnt = pfin.sum(axis=1)
        mean_past = np.where(pfin, past, 0.0).sum(axis=1) / np.maximum(cnt, 1)
        deviation = np.where(cnt > 0, residual - mean_past, 0.0)
        shift = np.where(finite, r, 0.0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1)
        prev = _last_finite(past)
        ratio = (norm.rscale / norm.dscale)[idx]  # residual units -> change units
        change = np.where(np.isfinite(prev), (residual - prev) * ratio, 0.0)
        d = np.diff(r, axis=1) * ratio[:, None]
        dfin = np.isfinite(d)
        volatility = np.where(dfin, np.abs(d), 0.0).sum(axis=1) / np.maximum(dfin.sum(axis=1), 1)
    out = np.column_stack([level, residual, change, deviation, shift, volatility])
    # Rounded so that float noise in exact repeats (a noise-free daily cycle) gives exact
    # ties, which calibration treats as normal instead of as the most extreme value seen.
    return np.round(signed_log(np.nan_to_num(out, nan=0.0, posinf=1e6, neginf=-1e6)), 3)


def _last_finite(a: np.ndarray) -> np.ndarray:
    """The last finite value of each row (NaN if none)."""
    if a.shape[1] == 0:
        return np.full(a.shape[0], np.nan)
    finite = np.isfinite(a)
    last = a.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    out = a[np.arange(a.shape[0]), last]
    return np.where(finite.any(axis=1), out, np.nan)


def window_matrix(ts: np.ndarray, values: np.ndarray, rows: np.ndarray, window: int):
    """Window matrices of the points `rows` of one series: (len(rows), window + 1) values and
    timestamps, the point last, NaN-padded where the series starts."""
    idx = np.asarray(rows, dtype=np.int64)[:, None] + np.arange(-window, 1)
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    return np.where(valid, values[safe], np.nan), np.where(valid, ts[safe], np.nan)


def sliding_windows(ts: np.ndarray, values: np.ndarray, window: int, start: int = 0,
                    stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Window matrices of points start..stop-1 of one series: (rows, window + 1), NaN-padded."""
    stop = len(values) if stop is None else stop
    return window_matrix(ts, values, np.arange(start, stop), window)


def series_features(ts: np.ndarray, values: np.ndarray, norm: SeriesNorm, window: int,
                    start: int = 0, stop: int | None = None, series: int = 0) -> np.ndarray:
    """Features of points start..stop-1 of one series (series `series` of `norm`), causally."""
    v, t = sliding_windows(ts, values, window, start, stop)
    return point_features(v, t, norm, np.full(len(v), series, dtype=np.int64))
