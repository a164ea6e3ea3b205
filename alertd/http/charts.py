"""Small inline SVG charts for the status page: a series, its detections and incidents.

`sparkline(ts, values, detections=..., spans=...)` returns an `<svg>` element (a string)
with the series as a line over a light area, detections (anomalous points) as red dots,
incident spans as shaded bands and the last point marked. Gaps (NaN) break the line.
No JavaScript; the browser draws it.
"""

from __future__ import annotations

import math
from html import escape

LINE, AREA, DOT, SPAN, PENDING_SPAN = "#2563eb", "#dbeafe", "#dc2626", "#fee2e2", "#fef3c7"


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def _dot(x: float, y: float, colour: str, size: float, title: str) -> str:
    return (f'<line class="dot" x1="{_fmt(x)}" y1="{_fmt(y)}" x2="{_fmt(x)}" y2="{_fmt(y)}" stroke="{colour}" '
            f'stroke-width="{size}" stroke-linecap="round" vector-effect="non-scaling-stroke">'
            f'<title>{escape(title)}</title></line>')


def _segments(points):
    """Runs of finite points (x, y), split at NaNs."""
    run = []
    for x, y in points:
        if math.isfinite(y):
            run.append((x, y))
        elif run:
            yield run
            run = []
    if run:
        yield run


def sparkline(ts, values, *, detections=(), spans=(), width: int = 300, height: int = 64,
              label: str = "") -> str:
    """An SVG chart of one series; `spans` are (start, end or None, state) incident periods."""
    ts = [float(t) for t in ts]
    values = [float(v) for v in values]
    pad = 4
    if not ts:
        return (f'<svg class="spark" width="100%" height="{height}" viewBox="0 0 {width} {height}" '
                f'role="img" aria-label="no data"><text x="{width / 2}" y="{height / 2 + 4}" '
                f'text-anchor="middle" class="nodata">no data yet</text></svg>')
    t0, t1 = min(ts), max(ts)
    finite = [v for v in values if math.isfinite(v)] + [v for t, v in detections if t0 <= t <= t1]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    span_t = (t1 - t0) or 1.0

    def x(t):
        return pad + (t - t0) / span_t * (width - 2 * pad)

    def y(v):
        return height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)

    # The chart stretches to its box's width; strokes and dots keep their size
    # (non-scaling strokes; a dot is a zero-length line with round caps).
    parts = [f'<svg class="spark" width="100%" height="{height}" viewBox="0 0 {width} {height}" '
             f'preserveAspectRatio="none" role="img" aria-label="{escape(label)}">']
    for start, end, state in spans:
        a, b = max(start, t0), min(end if end is not None else t1, t1)
        if b < a:
            continue
        colour = SPAN if state != "pending" else PENDING_SPAN
        parts.append(f'<rect x="{_fmt(x(a))}" y="0" width="{_fmt(max(x(b) - x(a), 2))}" '
                     f'height="{height}" fill="{colour}"><title>incident {escape(state)}</title></rect>')
    for run in _segments(zip(ts, values)):
        coords = " ".join(f"{_fmt(x(t))},{_fmt(y(v))}" for t, v in run)
        if len(run) > 1:
            base = height - pad
            parts.append(f'<polygon points="{_fmt(x(run[0][0]))},{base} {coords} '
                         f'{_fmt(x(run[-1][0]))},{base}" fill="{AREA}" stroke="none"/>')
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{LINE}" stroke-width="1.5" '
                         'stroke-linejoin="round" vector-effect="non-scaling-stroke"/>')
    for t, v in detections:
        if t0 <= t <= t1 and math.isfinite(v):
            parts.append(_dot(x(t), y(v), DOT, 5.5, f"anomalous: {v:.4g}"))
    last = next(((t, v) for t, v in zip(reversed(ts), reversed(values)) if math.isfinite(v)), None)
    if last is not None:
        parts.append(_dot(x(last[0]), y(last[1]), LINE, 4.5, f"last: {last[1]:.4g}"))
    parts.append("</svg>")
    return "".join(parts)
