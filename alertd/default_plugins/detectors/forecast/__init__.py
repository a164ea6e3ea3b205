"""The `forecast` detector: anomalies against a forecast, and early warnings before a line is crossed.

Without `will_cross`, a point outside the forecast's prediction interval (`level`, 0.99) is
anomalous, and the notice's expected range is that interval. With `will_cross: {below: 0,
within: 3h}` (or `above:`) the series is ANOMALOUS while its forecast (the central path, or
with `confidence: 0.8` the interval's side towards the line) reaches the line within the
horizon: an incident about the future, whose verdicts carry `crossing_at` and whose reason
says "stock_level 41, expected to reach 0 in about 2 h 40 (at 17:25 UTC), forecast by daily
profile + smoothing". Once the value is past the line the warning resolves at once
("crossed"): the breach is the threshold rule's.

Models (`model:`): `profile` (default: a daily or weekly profile with exponential smoothing,
numpy only, fitted for all series of a rule at once by the trainer: alertd/detect/forecast_fit.py);
`trend` (Prometheus' predict_linear over the last `range`, no fit: alertd/detect/trend.py); and,
with the optional `statsforecast` package (`pip install 'alertd[forecast]'`), `AutoETS`,
`AutoTheta`, `MSTL`, `AutoARIMA`, fitted in a worker process (alertd/detect/forecast_library.py).
`flow: drops` forecasts what a level loses per step (a stock's sales) and subtracts it.
"""

from __future__ import annotations

from alertd import hookimpl

from .detector import Forecast
from .params import ForecastParams, WillCross

__all__ = ["Forecast", "ForecastParams", "WillCross"]


@hookimpl
def register_detectors(register):
    register(Forecast)
