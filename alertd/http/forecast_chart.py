"""A forecast drawn on a series chart: the path ahead, its interval, the line and the crossing.

`forecast_marks(view, x, y, y_top, y_bottom)` turns a `Detector.forecast` view into SVG elements for a
chart whose time and value scales are the functions `x(t)` and `y(v)`; `forecast_extent(view)`
says what times and values the chart must make room for. The chart module calls both, so this
stays one small function whatever the chart looks like around it.
"""

from __future__ import annotations

import math
import time
from html import escape

PATH, BAND, LINE, CROSS = "#ea580c", "#fed7aa", "#dc2626", "#dc2626"


def _f(v: float) -> str:
    return f"{v:.1f}"


def forecast_extent(view: dict | None) -> tuple[list[float], list[float]]:
    """(times, values) the chart should include to show the forecast."""
    if not view or not view.get("ts"):
        return [], []
    values = [v for k in ("mean", "lower", "upper") for v in view.get(k) or () if math.isfinite(v)]
    if view.get("line") is not None:
        values.append(float(view["line"]))
    return [view["ts"][0], view["ts"][-1]], values


def forecast_marks(view: dict | None, x, y, y_top: float, y_bottom: float) -> str:
    """SVG elements of the forecast (empty without one)."""
    if not view or not view.get("ts"):
        return ""
    ts, mean = view["ts"], view["mean"]
    parts = []
    lower, upper = view.get("lower") or [], view.get("upper") or []
    if lower and upper:
        top = " ".join(f"{_f(x(t))},{_f(y(v))}" for t, v in zip(ts, upper))
        bottom = " ".join(f"{_f(x(t))},{_f(y(v))}" for t, v in zip(reversed(ts), reversed(lower)))
        title = "forecast interval" + (f" ({view['confidence']:g})" if view.get("confidence") else "")
        parts.append(f'<polygon class="fband" points="{top} {bottom}" fill="{BAND}" fill-opacity="0.6" '
                     f'stroke="none"><title>{escape(title)}</title></polygon>')
    coords = " ".join(f"{_f(x(t))},{_f(y(v))}" for t, v in zip(ts, mean))
    parts.append(f'<polyline class="fpath" points="{coords}" fill="none" stroke="{PATH}" stroke-width="1.5" '
                 f'stroke-dasharray="4 3" vector-effect="non-scaling-stroke"><title>forecast by '
                 f'{escape(str(view.get("model", "")))}</title></polyline>')
    line = view.get("line")
    if line is not None:
        parts.append(f'<line class="fline" x1="{_f(x(ts[0]))}" y1="{_f(y(line))}" x2="{_f(x(ts[-1]))}" '
                     f'y2="{_f(y(line))}" stroke="{LINE}" stroke-width="1" stroke-dasharray="2 2" '
                     f'vector-effect="non-scaling-stroke"><title>line {line:g}</title></line>')
    crossing = view.get("crossing_at")
    if crossing is not None and line is not None:
        when = time.strftime("%H:%M UTC", time.gmtime(crossing))
        parts.append(f'<line class="fcross" x1="{_f(x(crossing))}" y1="{_f(y_top)}" x2="{_f(x(crossing))}" y2="{_f(y_bottom)}" '
                     f'stroke="{CROSS}" stroke-width="1.5" vector-effect="non-scaling-stroke">'
                     f'<title>expected to reach {line:g} at {when}</title></line>')
    return "".join(parts)
