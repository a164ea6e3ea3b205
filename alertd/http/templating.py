"""Jinja2 for the pages: templates in alertd/http/templates/, HTML autoescape always on.

Label values, annotations and comments are data: the environment escapes every value it
prints (a label `<script>` shows as text). Filters format times (UTC), ages, durations,
numbers and labels once, so templates stay short.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..durations import format_duration
from .server import Response

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(ts) -> str:
    """`2025-06-01 12:00:03` (UTC), or "-"."""
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def short_time(ts) -> str:
    return "-" if ts is None else time.strftime("%H:%M:%S", time.gmtime(ts))


def duration(seconds) -> str:
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return "-"
    return format_duration(max(0.0, float(seconds)))


def number(v) -> str:
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    return f"{v:.4g}"


def detail_text(detail: dict) -> str:
    """An event's detail as `key: value · ...`: lists joined, times (`..._at`, `before`) in UTC."""
    parts = []
    for key, value in sorted((detail or {}).items()):
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, (int, float)) and (key.endswith("_at") or key == "before"):
            value = when(value) + " UTC"
        parts.append(f"{key}: {value}")
    return " · ".join(parts)


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(when=when, short_time=short_time, duration=duration, num=number, detail_text=detail_text)
    return env


ENV = _env()


def render(_template: str, status: int = 200, headers: dict | None = None, **context) -> Response:
    """The template `_template` rendered with `context`, as an HTML response."""
    response = Response.html(ENV.get_template(_template).render(**context), status)
    response.headers.update({"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                             "Referrer-Policy": "same-origin", **(headers or {})})
    return response


# Everything comes from alertd itself: no inline script, no other origin, no framing.
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
