"""Forecasts by statsforecast (the optional `alertd[forecast]` extra), fitted in a worker process.

`model: AutoETS | AutoTheta | MSTL | AutoARIMA` in a forecast rule. The series are put on
the same grid of knots as the default model, and their rhythm is found by the same rule
(alertd/detect/forecast_fit.py); then each series is fitted by statsforecast 2.x:

| model | with a daily or weekly rhythm of m knots | without |
|---|---|---|
| AutoETS | seasonal ETS when m <= 24; else ETS (ZZN) on the series minus its profile | AutoETS |
| AutoTheta | AutoTheta(season_length=m) | AutoTheta |
| MSTL | MSTL(season_length=m) with an ETS (ZZN) trend | AutoETS |
| AutoARIMA | non-seasonal AutoARIMA on the series minus its profile (seasonal AutoARIMA takes minutes a series) | AutoARIMA |

Why a process: statsforecast's compiled core holds the GIL for a whole fit (up to half a
second a series), which would stall the event loop from the trainer's thread; it also
imports in about 2 s and brings pandas and pyarrow (about 330 MB) that the daemon itself never
needs. So the fits run in the fit worker process (alertd/detect/fit_worker.py: spawned on
first use, `nice`d, kept for the next fit), and only arrays cross: the grid in, paths and
errors by lead out. A forecast rule's fit is sent to that process whole by the trainer
(`fit_in_process`); the chunks then run in place. What is stored is the same
`ForecastModel` as the default's: paths, not model objects.
"""

from __future__ import annotations

import importlib.util
import math
import time

import numpy as np

from . import fit_worker
from .fit_worker import shutdown, worker  # noqa: F401  (the worker process: alertd/detect/fit_worker.py)
from .forecast import ForecastModel, two_sided_z
from .forecast_fit import (
    Grid,
    detect_periods,
    knot_for,
    median_step,
    nan_median,
    out_of_sample_factor,
    seasonal_profile,
    slot_at,
)
from .seasons import DAY, WEEK

MODELS = ("AutoETS", "AutoTheta", "MSTL", "AutoARIMA")
INSTALL = "pip install 'alertd[forecast]'"
CHUNK = 200  # series sent to the worker at a time


def available() -> bool:
    """Whether statsforecast can be imported (without importing it: that takes seconds)."""
    return importlib.util.find_spec("statsforecast") is not None


def fit_library(model: str, keys, ts_list, values_list, *, end: float, span: float, horizon: float,
                level: float = 0.99, seasonality: str = "auto", utc_offset: float = 0.0, flow: str = "none",
                step: float | None = None, min_knots: int = 6) -> ForecastModel | None:
    """Fit `model` to every series in the worker process; see the module docstring."""
    if not available():
        raise RuntimeError(f"model {model} needs the statsforecast package; {INSTALL}")
    started = time.perf_counter()
    step = median_step(ts_list) if step is None else step
    grid = Grid(ts_list, values_list, knot_for(step), end, span, flow)
    Y = grid.values
    keep = np.flatnonzero(np.isfinite(Y).sum(axis=1) >= max(min_knots, 8))
    if not len(keep):
        return None
    Y = Y[keep]
    n, T = Y.shape
    period = detect_periods(grid, Y, seasonality, utc_offset)
    H = int(math.ceil(horizon / grid.knot)) + 2
    season = np.zeros((n, T + H), dtype=np.float32)  # the profile, for models that get it removed
    for per in (DAY, WEEK):
        rows = np.flatnonzero(period == per)
        if len(rows):
            prof = seasonal_profile(grid, Y[rows], nan_median(Y[rows], axis=1), per, utc_offset)
            times = grid.start + np.arange(T + H) * grid.knot + utc_offset
            season[rows] = prof[:, slot_at(times, per, grid.knot, prof.shape[1])]
    m = np.where(period > 0, np.round(period / grid.knot), 1).astype(int)
    mean, spread, cpu = _in_worker(model, Y, season, m, H, level)  # (n, H + 1) each: knot T-1 onwards
    sigma = spread[:, 1].astype(float)
    z = two_sided_z(level)
    if flow == "none":
        extra = z * grid.spread[keep]
        half = np.sqrt((z * sigma) ** 2 + extra ** 2) * out_of_sample_factor(grid, Y, period)
        band = np.column_stack([-half, half])
        origin = grid.start + (T - 1) * grid.knot + grid.shift
        path = mean
    else:
        rate = np.maximum(mean, 0.0)
        path = np.concatenate([np.zeros((n, 1)), np.cumsum(rate[:, :-1], axis=1)], axis=1)
        spread = np.sqrt(np.concatenate([np.zeros((n, 1)), np.cumsum(spread[:, 1:] ** 2, axis=1)], axis=1))
        band = np.column_stack([-sigma, sigma]) * z
        origin = grid.start + (T - 1) * grid.knot
    names = np.where(period == DAY, "daily", np.where(period == WEEK, "weekly", "")).tolist()
    return ForecastModel(
        keys=[keys[i] for i in keep], origin=origin, knot=grid.knot, path=path.astype(np.float32),
        sigma=sigma.astype(np.float32), alpha=np.zeros(n, dtype=np.float32), band=band.astype(np.float32),
        period=period, flow=flow, model=model, seasons=names, fitted_at=end,
        fit_seconds=time.perf_counter() - started, train_points=int(sum(len(ts_list[i]) for i in keep)),
        spreads=spread.astype(np.float32), cpu_seconds=cpu)


def _in_worker(model: str, Y, season, m, H: int, level: float):
    """Run the fits in the worker, CHUNK series at a time; (mean, spread, worker CPU seconds).
    Already in it (the trainer sent the rule's whole fit there), in place. A worker that died
    (killed, out of memory) is replaced at the next fit; this one fails."""
    calls = [(fit_chunk, model, Y[i:i + CHUNK], season[i:i + CHUNK], m[i:i + CHUNK], H, level)
             for i in range(0, len(Y), CHUNK)]
    parts = fit_worker.gather(model, calls)  # (in place when already in the worker)
    mean = np.concatenate([p[0] for p in parts])
    spread = np.concatenate([p[1] for p in parts])
    return mean, spread, float(sum(p[2] for p in parts))


def fit_chunk(model: str, Y: np.ndarray, season: np.ndarray, m: np.ndarray, H: int, level: float):
    """In the worker: (mean, spread, CPU seconds), mean and spread (n, H + 1) each, from the
    last knot on: column 0 is the last knot itself (its value; spread 0), column h the forecast
    h knots ahead and its standard error (from the `level` interval)."""
    from statsforecast.models import MSTL, AutoARIMA, AutoETS, AutoTheta

    started = time.process_time()
    n, T = Y.shape
    z = two_sided_z(level)
    mean = np.zeros((n, H + 1))
    spread = np.zeros((n, H + 1))
    for i in range(n):
        first, y = _filled(Y[i].astype(float))
        k = int(m[i])
        deseason = k > 1 and (model == "AutoARIMA" or (model == "AutoETS" and k > 24))
        base = season[i, first:T].astype(float) if deseason else 0.0
        ahead = season[i, T:T + H].astype(float) if deseason else 0.0
        if model == "AutoETS":
            fitter = AutoETS(model="ZZN") if deseason else AutoETS(season_length=k if 1 < k <= 24 else 1)
        elif model == "AutoTheta":
            fitter = AutoTheta(season_length=k) if k > 1 and len(y) >= 2 * k else AutoTheta()
        elif model == "MSTL":
            fitter = MSTL(season_length=k, trend_forecaster=AutoETS(model="ZZN")) if k > 1 and len(y) >= 2 * k \
                else AutoETS()
        else:
            fitter = AutoARIMA()
        out = fitter.forecast(y=y - base, h=H, level=[round(level * 100.0, 6)])
        mu = np.asarray(out["mean"], dtype=float) + ahead
        lo = next((np.asarray(v, dtype=float) for key, v in out.items() if key.startswith("lo-")), mu)
        hi = next((np.asarray(v, dtype=float) for key, v in out.items() if key.startswith("hi-")), mu)
        mean[i, 0], mean[i, 1:] = y[-1], mu
        spread[i, 1:] = np.nan_to_num(np.maximum((hi - lo) / (2 * z), 0.0))
    return mean, spread, time.process_time() - started


def _filled(y: np.ndarray) -> tuple[int, np.ndarray]:
    """(index of the first usable knot, the knots from it on with gaps linearly interpolated
    and a trailing gap held at the last value)."""
    ok = np.isfinite(y)
    first = int(np.argmax(ok))
    y, ok = y[first:], ok[first:]
    if not ok.all():
        idx = np.arange(len(y))
        y = np.interp(idx, idx[ok], y[ok])
    return first, y
