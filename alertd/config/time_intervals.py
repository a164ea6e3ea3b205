"""Recurring time intervals, as Alertmanager's `time_intervals` define them.

A named interval is a list of specs; a moment is inside the interval when it is inside any
spec. A spec restricts `times` of day (start inclusive, end exclusive, `24:00` allowed as an
end), `weekdays` (`monday:friday`), `days_of_month` (`1:5`, `-1` is the last day), `months`
(`january:march` or `1:3`), `years` (`2025:2026`), all in its `location` (an IANA time zone,
`UTC` by default, or `Local`). A field left out does not restrict. Routes refer to intervals
by name in `mute_time_intervals` and `active_time_intervals`.
"""

from __future__ import annotations

import calendar
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from functools import lru_cache

from .schema import Where, suggest

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
_SPEC_KEYS = ("times", "weekdays", "days_of_month", "months", "years", "location")

Range = tuple[int, int]


@dataclass(frozen=True)
class TimeIntervalSpec:
    """One entry of a named interval: every listed field must contain the moment."""

    times: tuple[Range, ...] = ()  # minutes of the day, [start, end)
    weekdays: tuple[Range, ...] = ()  # 0 = monday .. 6 = sunday, inclusive
    days_of_month: tuple[Range, ...] = ()  # 1..31 or -31..-1, inclusive
    months: tuple[Range, ...] = ()  # 1..12, inclusive
    years: tuple[Range, ...] = ()
    location: str = "UTC"

    def contains(self, ts: float) -> bool:
        """Whether the epoch time `ts` is inside this spec (in its time zone)."""
        t = datetime.fromtimestamp(ts, _zone(self.location))
        if self.times:
            minute = t.hour * 60 + t.minute
            if not any(a <= minute < b for a, b in self.times):
                return False
        if self.weekdays and not any(a <= t.weekday() <= b for a, b in self.weekdays):
            return False
        if self.days_of_month:
            last = calendar.monthrange(t.year, t.month)[1]
            if not any(_day(a, last) <= t.day <= _day(b, last) for a, b in self.days_of_month):
                return False
        if self.months and not any(a <= t.month <= b for a, b in self.months):
            return False
        if self.years and not any(a <= t.year <= b for a, b in self.years):
            return False
        return True


def _day(day: int, last: int) -> int:
    """A day of month where -1 is the last day; clamped into the month."""
    return min(day, last) if day > 0 else max(1, last + 1 + day)


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return timezone.utc
    if name == "Local":
        return datetime.now().astimezone().tzinfo
    return zoneinfo.ZoneInfo(name)


def interval_contains(specs: tuple[TimeIntervalSpec, ...], ts: float) -> bool:
    """Whether `ts` is inside a named interval (any of its specs)."""
    return any(spec.contains(ts) for spec in specs)


# -- parsing -------------------------------------------------------------------------------
class _Bad(ValueError):
    pass


def _parse_time(value, field: str) -> int:
    text = str(value).strip()
    match = _TIME.match(text)
    if not match:
        raise _Bad(f'"{text}" is not a time of day; write {field} as "HH:MM" in quotes, such as "09:30"')
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise _Bad(f'"{text}" is not a time of day; use 00:00 to 24:00')
    return hours * 60 + minutes


def _parse_times(item) -> Range:
    if not isinstance(item, dict):
        raise _Bad('expected a mapping like {start_time: "09:00", end_time: "17:00"}')
    unknown = set(item) - {"start_time", "end_time"}
    if unknown:
        key = sorted(unknown)[0]
        raise _Bad(f'unknown key "{key}"{suggest(key, ["start_time", "end_time"])}')
    if "start_time" not in item or "end_time" not in item:
        raise _Bad('both "start_time" and "end_time" are needed, such as "09:00" and "17:00"')
    start, end = _parse_time(item["start_time"], "start_time"), _parse_time(item["end_time"], "end_time")
    if start >= end:
        raise _Bad(f'start_time "{item["start_time"]}" is not before end_time "{item["end_time"]}"; '
                   "an interval that spans midnight is written as two entries")
    return start, end


def _name_or_number(token: str, names: tuple[str, ...], what: str, lo: int, hi: int, base: int) -> int:
    low = token.strip().lower()
    if low in names:
        return names.index(low) + base
    if re.fullmatch(r"-?[0-9]+", low) and names is MONTHS:
        number = int(low)
        if lo <= number <= hi:
            return number
    raise _Bad(f'"{token}" is not a {what}{suggest(low, names)}')


def _parse_range(value, parse) -> Range:
    text = str(value).strip()
    parts = text.split(":")
    if len(parts) > 2 or not all(p.strip() for p in parts):
        raise _Bad(f'"{text}" is not a value or a range; write one value or "first:last"')
    first = parse(parts[0])
    last = parse(parts[-1])
    return first, last


def _weekday(token: str) -> int:
    return _name_or_number(token, WEEKDAYS, "weekday", 0, 6, 0)


def _month(token: str) -> int:
    return _name_or_number(token, MONTHS, "month", 1, 12, 1)


def _number(token: str, what: str, lo: int, hi: int, nonzero: bool = False) -> int:
    token = token.strip()
    if not re.fullmatch(r"-?[0-9]+", token):
        raise _Bad(f'"{token}" is not a {what}; write a number')
    number = int(token)
    if not lo <= number <= hi or (nonzero and number == 0):
        raise _Bad(f'"{token}" is not a {what}; use {lo}..{hi}' + (" without 0" if nonzero else ""))
    return number


def _ordered(rng: Range, text, what: str) -> Range:
    a, b = rng
    if (a < 0) == (b < 0) and a > b:
        raise _Bad(f'the {what} range "{text}" ends before it starts; write it as "first:last"')
    if a < 0 < b:
        raise _Bad(f'the {what} range "{text}" goes from a negative day to a positive one; '
                   "write both ends positive or both negative")
    return rng


def _parse_list(values, parse, what: str, where: Where) -> tuple[Range, ...] | None:
    if values is None:
        return ()
    if not isinstance(values, list):
        values = [values]
    out, ok = [], True
    for i, value in enumerate(values):
        line = values.line_of(i) if hasattr(values, "line_of") else None
        try:
            rng = _parse_range(value, parse) if what != "time" else parse(value)
            if what == "weekday" and rng[0] == 6 and rng[1] < 6:
                out += [(6, 6), (0, rng[1])]  # Alertmanager's weeks start on sunday: sunday:friday
                continue
            out.append(_ordered(rng, value, what) if what != "time" else rng)
        except _Bad as exc:
            where.item(i, line).error(str(exc))
            ok = False
    return tuple(out) if ok else None


def parse_spec(raw, where: Where) -> TimeIntervalSpec | None:
    """One spec from YAML; records a problem naming the exact token for each mistake."""
    if not isinstance(raw, dict):
        where.error("expected a mapping with times, weekdays, days_of_month, months, years or location")
        return None
    ok = True
    for key in raw:
        if key not in _SPEC_KEYS:
            where.child(str(key), raw.line_of(key) if hasattr(raw, "line_of") else None).error(
                f'unknown key "{key}"{suggest(key, _SPEC_KEYS)}')
            ok = False

    def sub(key):
        return where.child(key, raw.line_of(key) if hasattr(raw, "line_of") else None)

    times = _parse_list(raw.get("times"), _parse_times, "time", sub("times"))
    weekdays = _parse_list(raw.get("weekdays"), _weekday, "weekday", sub("weekdays"))
    days = _parse_list(raw.get("days_of_month"),
                       lambda t: _number(t, "day of month", -31, 31, nonzero=True), "day of month",
                       sub("days_of_month"))
    months = _parse_list(raw.get("months"), _month, "month", sub("months"))
    years = _parse_list(raw.get("years"), lambda t: _number(t, "year", 1, 9999), "year", sub("years"))
    location = str(raw.get("location") or "UTC")
    if location not in ("UTC", "Local"):
        try:
            _zone(location)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            hint = suggest(location, zoneinfo.available_timezones())
            if not hint.startswith("; did you mean"):
                hint = "; write an IANA name such as Europe/Berlin, or UTC, or Local."
            sub("location").error(f'"{location}" is not a time zone{hint}')
            ok = False
    if None in (times, weekdays, days, months, years) or not ok:
        return None
    return TimeIntervalSpec(times, weekdays, days, months, years, location)
