"""Small helpers the built-in sources share: excerpts of bad input, numbers, timestamps.

Every source reports bad input as one sentence with a short excerpt of what it got, so an
operator can tell an HTML error page from a truncated JSON document at a glance; these
helpers keep those sentences alike.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from .sample_checks import TS_MAX, TS_MIN

_SPACES = re.compile(r"\s+")


def excerpt(data, limit: int = 80) -> str:
    """A short, quoted, single-line excerpt of `data` (bytes or text) for an error message."""
    if isinstance(data, (bytes, bytearray)):
        text = bytes(data[: limit * 4]).decode("utf-8", errors="backslashreplace")
    else:
        text = str(data)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def describe_payload(body: bytes, content_type: str = "") -> str:
    """What a body looks like, for "expected JSON, got ...": an HTML page, empty, or text."""
    head = body[:512].lstrip().lower()
    if not body.strip():
        return "an empty body"
    if head.startswith((b"<!doctype html", b"<html")) or "html" in content_type.lower():
        return f"an HTML page {excerpt(_html_title(body) or body)}"
    return excerpt(body)


def _html_title(body: bytes) -> str:
    match = re.search(rb"<title[^>]*>(.*?)</title>", body[:4096], re.I | re.S)
    return match.group(1).decode("utf-8", "replace").strip() if match else ""


def public_url(url: str) -> str:
    """`url` without user info and query string: safe for logs (tokens hide there)."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def to_value(raw):
    """A sample value from JSON/SQL/text: numbers and numeric strings become floats.

    Booleans become 1.0/0.0. Anything else is returned unchanged, so the engine drops it
    and counts it (`alertd_samples_skipped_total{reason="not_a_number"}`) with an excerpt.
    """
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, float):
        return raw
    if isinstance(raw, int):  # one beyond a float's range stays as it is: counted as too_large
        return float(raw) if abs(raw) <= 2 ** 1023 else raw
    if isinstance(raw, (str, bytes)):
        try:
            return float(raw.strip())
        except ValueError:
            return raw
    return raw


def parse_timestamp(raw) -> float:
    """Epoch seconds from a number (seconds, or milliseconds when > 1e11) or ISO 8601 text.

    Naive date-times are taken as UTC. Raises ValueError with a readable message, also for
    times outside the years 1-9999 (which no notice could show).
    """
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{raw!r} is not a timestamp")
    if isinstance(raw, (int, float)):
        value = float(raw) if abs(raw) < 1e300 else math.inf  # (ints beyond a float overflow)
    else:
        text = str(raw).strip()
        try:
            value = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{excerpt(text, 40)} is not a timestamp; use epoch seconds or "
                                 "ISO 8601 such as 2024-06-03T08:00:00Z") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return moment.timestamp()
    if not math.isfinite(value):
        raise ValueError(f"{excerpt(raw, 40)} is not a timestamp")
    value = value / 1000.0 if abs(value) > 1e11 else value
    if not TS_MIN <= value <= TS_MAX:
        raise ValueError(f"{excerpt(raw, 40)} is not a time between the years 1 and 9999; use epoch "
                         "seconds or milliseconds")
    return value


def deadline(context, default: float = 30.0) -> float:
    """The seconds a source may spend on one operation: a little less than its `timeout`.

    The daemon cancels a poll at `timeout`; stopping a bit earlier lets the source say what
    hung (which URL, which command) instead of a bare "timeout".
    """
    timeout = getattr(context, "timeout", None) or default
    return max(timeout * 0.9, timeout - 1.0)


def count(context, metric: str, *labels, amount: float = 1) -> None:
    """Increment one of the daemon's counters (`context.metrics.<metric>`), if there is one."""
    metrics = getattr(context, "metrics", None)
    if metrics is not None and amount:
        getattr(metrics, metric).labels(*labels).inc(amount)
