"""The `trend` forecast: Prometheus' `predict_linear`, vectorised over the series of a poll.

`predict_linear(v[range], t)` fits a least-squares line to the samples of the last `range`
(both ends included, as Prometheus 2.x selects them) with time measured from the evaluation
time, and returns the line's value `t` seconds later. `line_fit` does the same on a window
matrix (one row per series, NaN where a series has no point), with the evaluation time
being the current point's time. A line of fewer than two points, or of one value only,
is Prometheus' answer too (no result; slope 0).

For `will_cross`, the warning is exactly Prometheus' `predict_linear(v[range], within) <
level` (or `>`), told as a time: the line reaches the level `(level - intercept) / slope`
seconds from now (0 when the line is past it already at now). With a confidence, the bound is the ordinary least-squares prediction
interval, `z * s * sqrt(1 + 1/n + (t - mean t)^2 / Sxx)`, searched on a grid of the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .forecast import Line, normal_cdf

SEARCH_STEPS = 48  # points of the horizon the confidence bound is checked at


@dataclass
class LineFit:
    """Per series: slope (per second), the line's value at the evaluation time, and what
    the prediction interval needs (points, mean time from now, Sxx, residual spread)."""

    slope: np.ndarray
    intercept: np.ndarray
    count: np.ndarray
    mean_t: np.ndarray
    sxx: np.ndarray
    resid: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.count >= 2

    def value_at(self, seconds) -> np.ndarray:
        """The line `seconds` after the evaluation time (predict_linear's result)."""
        return self.intercept + self.slope * seconds

    def spread_at(self, seconds) -> np.ndarray:
        """The standard error of a new point `seconds` after the evaluation time."""
        n = np.maximum(self.count, 3).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            lever = np.where(self.sxx > 0, (seconds - self.mean_t) ** 2 / self.sxx, 0.0)
        return self.resid * np.sqrt(1.0 + 1.0 / n + lever)


def line_fit(values: np.ndarray, times: np.ndarray, now: np.ndarray, range_s: float) -> LineFit:
    """Least squares over the points of each row within [now - range_s, now]."""
    values = np.asarray(values, dtype=float)
    times = np.asarray(times, dtype=float)
    now = np.asarray(now, dtype=float)[:, None]
    x = times - now
    use = np.isfinite(values) & np.isfinite(times) & (x >= -range_s) & (x <= 0)
    n = use.sum(axis=1).astype(float)
    safe_n = np.maximum(n, 1.0)
    xm = np.where(use, x, 0.0).sum(axis=1) / safe_n
    ym = np.where(use, values, 0.0).sum(axis=1) / safe_n
    dx = np.where(use, x - xm[:, None], 0.0)
    dy = np.where(use, values - ym[:, None], 0.0)
    sxx = (dx * dx).sum(axis=1)
    sxy = (dx * dy).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, sxy / sxx, 0.0)
    intercept = ym - slope * xm
    fitted = intercept[:, None] + slope[:, None] * x
    res = np.where(use, values - fitted, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        resid = np.sqrt((res * res).sum(axis=1) / np.maximum(n - 2, 1))
    slope = np.where(n >= 2, slope, np.nan)
    intercept = np.where(n >= 2, intercept, np.nan)
    return LineFit(slope, intercept, n.astype(np.int64), xm, sxx, resid)


def trend_crossing(fit: LineFit, ts: np.ndarray, x: np.ndarray, line: Line) -> tuple[np.ndarray, np.ndarray]:
    """When each series' line (or its bound, with a confidence) reaches `line` within the
    horizon (NaN: not within it), and the largest probability of being past it then."""
    n = len(ts)
    at = np.full(n, np.nan)
    sign = -1.0 if line.below else 1.0
    ok = fit.valid & np.isfinite(x)
    if line.z == 0.0:  # predict_linear(v[range], within) past the level, told as a time
        hit = ok & line.beyond(fit.value_at(line.within))
        with np.errstate(invalid="ignore", divide="ignore"):
            eta = np.where(line.beyond(fit.intercept), 0.0, (line.level - fit.intercept) / fit.slope)
        at[hit] = ts[hit] + np.clip(eta[hit], 0.0, line.within)
    else:
        grid = np.linspace(0.0, line.within, SEARCH_STEPS + 1)
        bound = fit.intercept[:, None] + fit.slope[:, None] * grid[None, :]
        spread = np.stack([fit.spread_at(g) for g in grid], axis=1)
        bound = bound + sign * line.z * spread
        past = line.beyond(bound) & ok[:, None]
        hit = past.any(axis=1)
        first = np.argmax(past, axis=1)
        idx = np.flatnonzero(hit)
        if len(idx):
            j = first[idx]
            t1, v1 = grid[j], bound[idx, j]
            t0 = np.where(j > 0, grid[np.maximum(j - 1, 0)], 0.0)
            v0 = np.where(j > 0, bound[idx, np.maximum(j - 1, 0)], bound[idx, 0])
            with np.errstate(invalid="ignore", divide="ignore"):
                frac = np.where(j > 0, np.clip((v0 - line.level) / (v0 - v1), 0.0, 1.0), 0.0)
            at[idx] = ts[idx] + t0 + np.nan_to_num(frac) * (t1 - t0)
    far = fit.value_at(line.within)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = -sign * (line.level - far) / np.maximum(fit.spread_at(line.within), 1e-12)
    prob = np.where(ok, normal_cdf(np.nan_to_num(z, nan=-np.inf)), np.nan)
    return at, prob
