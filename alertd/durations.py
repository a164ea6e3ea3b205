"""Durations as operators write them: `30s`, `5m`, `1h30m`, `2d`, `1w`, or a bare number of seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value) -> float:
    """Seconds in `value`; raises ValueError with a hint when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    text = str(value).strip()
    if not text:
        raise ValueError("an empty string is not a duration")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"{text!r} is not a duration")
    return total


def format_duration(seconds: float) -> str:
    """The shortest readable form: 90 -> '1m30s', 7200 -> '2h'."""
    seconds = float(seconds)
    if seconds < 1 and seconds > 0:
        return f"{seconds * 1000:.0f}ms"
    parts, rest = [], int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"
