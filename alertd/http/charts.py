"""Inline SVG charts for the pages: a series with axes, its time range and what alertd saw.

`chart(ts, values, ...)` returns an `<svg>` element (a string): the series as a line, a value
axis with round ticks, a time axis (UTC) whose caption says the range shown ("12:00 to 12:40
UTC, 40m"), incident periods as shaded bands, detections (anomalous points) as red dots, the
detector's expected band as a green area (or the expected range as dashed lines when only an
incident's range is known) and the last point marked. Gaps (NaN) break the line. Two charts
of 40 minutes and 8 hours no longer look alike. No JavaScript; the browser draws it; each
mark has a `<title>` a pointer shows.
"""

from __future__ import annotations

import math
import time
from html import escape

from .forecast_chart import forecast_extent, forecast_marks

LINE, DOT, SPAN, PENDING_SPAN, BAND, AXIS, GRID = "#2563eb", "#dc2626", "#fee2e2", "#fef3c7", "#bbf7d0", "#6b7280", "#e5e7eb"
_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def _f(v: float) -> str:
    return f"{v:.1f}"


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """About `count` round values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return ticks


def time_ticks(t0: float, t1: float, count: int = 4) -> list[float]:
    """Round times (whole minutes, hours, days in UTC) between t0 and t1."""
    span = max(t1 - t0, 1.0)
    step = next((s for s in _STEPS if span / s <= count), _STEPS[-1])
    first = math.ceil(t0 / step) * step
    return [t for t in (first + i * step for i in range(int(span // step) + 2)) if t0 <= t <= t1]


def _time_label(t: float, span: float) -> str:
    g = time.gmtime(t)
    if span > 2 * 86400:
        return time.strftime("%b %d", g)
    if span > 20 * 3600:
        return time.strftime("%a %H:%M", g)
    return time.strftime("%H:%M", g)


def _value_label(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.2g}"
    return f"{v:.4g}"


def range_caption(t0: float, t1: float) -> str:
    """`12:00 to 12:40 UTC (40m)`, with dates when the range crosses days."""
    from ..durations import format_duration

    fmt = "%H:%M" if time.gmtime(t0)[:3] == time.gmtime(t1)[:3] else "%Y-%m-%d %H:%M"
    return (f"{time.strftime(fmt, time.gmtime(t0))} to {time.strftime(fmt, time.gmtime(t1))} UTC "
            f"({format_duration(max(0.0, t1 - t0))})")


def _segments(points):
    run = []
    for x, y in points:
        if math.isfinite(y):
            run.append((x, y))
        elif run:
            yield run
            run = []
    if run:
        yield run


def chart(ts, values, *, detections=(), spans=(), band=(), expected=(None, None), start=None, end=None,
          width: int = 480, height: int = 170, label: str = "", forecast: dict | None = None) -> str:
    """An SVG chart of one series (see the module docstring). `spans`: (start, end or None,
    state) incident periods; `band`: (ts, low, high) expected band points; `expected`: a
    constant (low, high) range drawn as dashed lines; `start`/`end`: the time range shown;
    `forecast` (a Detector.forecast view) is drawn ahead of the series (forecast_chart.py),
    the time range widened to hold it."""
    ts = [float(t) for t in ts]
    values = [float(v) for v in values]
    ahead_t, ahead_v = forecast_extent(forecast)
    left, right, top, bottom = 46, 10, 8, 34
    inner_w, inner_h = width - left - right, height - top - bottom
    head = (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">')
    if not ts:
        return (head + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="nodata">'
                "no data stored for this time</text></svg>")
    t0 = min(ts) if start is None else float(start)
    t1 = max(ts) if end is None else float(end)
    t1 = max([t1] + ahead_t)
    t1 = t1 if t1 > t0 else t0 + 60
    seen = [v for v in values if math.isfinite(v)] + ahead_v
    seen += [v for t, v in detections if t0 <= t <= t1 and math.isfinite(v)]
    seen += [v for _, lo, hi in band for v in (lo, hi) if math.isfinite(v)]
    seen += [v for v in expected if v is not None and math.isfinite(v)]
    lo, hi = (min(seen), max(seen)) if seen else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def x(t):
        return left + (min(max(t, t0), t1) - t0) / (t1 - t0) * inner_w

    def y(v):
        return top + inner_h - (v - lo) / (hi - lo) * inner_h

    parts = [head]
    for v in nice_ticks(lo, hi):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>'
                     f'<text x="{left - 4}" y="{_f(y(v) + 4)}" text-anchor="end" class="tick">'
                     f"{_value_label(v)}</text>")
    for t in time_ticks(t0, t1):
        parts.append(f'<line x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{top}" y2="{top + inner_h + 3}" stroke="{GRID}"/>'
                     f'<text x="{_f(x(t))}" y="{top + inner_h + 14}" text-anchor="middle" class="tick">'
                     f"{_time_label(t, t1 - t0)}</text>")
    for s, e, state in spans:
        a, b = max(s, t0), min(e if e is not None else t1, t1)
        if b >= a:
            parts.append(f'<rect x="{_f(x(a))}" y="{top}" width="{_f(max(x(b) - x(a), 2))}" height="{inner_h}" '
                         f'fill="{PENDING_SPAN if state == "pending" else SPAN}"><title>incident {escape(state)}'
                         "</title></rect>")
    finite = [(t, a, b) for t, a, b in band if t0 <= t <= t1 and (math.isfinite(a) or math.isfinite(b))]
    if finite:
        upper = [(t, b if math.isfinite(b) else hi) for t, a, b in finite]
        lower = [(t, a if math.isfinite(a) else lo) for t, a, b in finite]
        pts = " ".join(f"{_f(x(t))},{_f(y(v))}" for t, v in upper + lower[::-1])
        parts.append(f'<polygon points="{pts}" fill="{BAND}" fill-opacity="0.55"><title>expected band</title></polygon>')
    for v in expected:
        if v is not None and math.isfinite(v) and lo <= v <= hi:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="#16a34a" '
                         f'stroke-dasharray="5 3"><title>expected limit {_value_label(v)}</title></line>')
    for run in _segments(list(zip(ts, values))):
        coords = " ".join(f"{_f(x(t))},{_f(y(v))}" for t, v in run if t0 <= t <= t1)
        if coords:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{LINE}" stroke-width="1.6" '
                         'stroke-linejoin="round"/>')
    for t, v in detections:
        if t0 <= t <= t1 and math.isfinite(v):
            parts.append(f'<circle cx="{_f(x(t))}" cy="{_f(y(v))}" r="3.2" fill="{DOT}">'
                         f"<title>anomalous: {v:.4g} at {time.strftime('%H:%M:%S', time.gmtime(t))} UTC</title></circle>")
    parts.append(forecast_marks(forecast, x, y, top, top + inner_h))
    last = next(((t, v) for t, v in zip(reversed(ts), reversed(values)) if math.isfinite(v)), None)
    if last is not None and t0 <= last[0] <= t1:
        parts.append(f'<circle cx="{_f(x(last[0]))}" cy="{_f(y(last[1]))}" r="2.6" fill="{LINE}">'
                     f"<title>last: {last[1]:.4g}</title></circle>")
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + inner_h}" stroke="{AXIS}"/>'
                 f'<line x1="{left}" x2="{width - right}" y1="{top + inner_h}" y2="{top + inner_h}" stroke="{AXIS}"/>'
                 f'<text x="{left}" y="{height - 3}" class="range">{escape(range_caption(t0, t1))}</text></svg>')
    return "".join(parts)
