"""Time of day and week for detectors: a timezone's offset, and "for Tue 14:00" texts."""

from __future__ import annotations

from datetime import datetime, timezone

DAY, WEEK = 86400.0, 7 * 86400.0
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def utc_offset(tz: str, when: float) -> float:
    """Seconds east of UTC of timezone `tz` at epoch `when`."""
    if tz.upper() == "UTC":
        return 0.0
    from zoneinfo import ZoneInfo
    offset = datetime.fromtimestamp(when, ZoneInfo(tz)).utcoffset()
    return offset.total_seconds() if offset else 0.0


def slot_text(period: float, local_ts: float) -> str:
    """'for Tue 14:00' (weekly rhythm), 'for 14:00' (daily), '' (none): what a point was
    compared with, for the one-line explanation."""
    if period <= 0:
        return ""
    moment = datetime.fromtimestamp(local_ts, timezone.utc)
    return f"for {moment:%H:%M}" if period == DAY else f"for {_DAYS[moment.weekday()]} {moment:%H:%M}"
