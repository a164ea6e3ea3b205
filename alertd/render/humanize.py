"""Prometheus' template functions for numbers and times, as annotation filters.

Ports of `humanize`, `humanize1024`, `humanizeDuration`, `humanizePercentage`,
`humanizeTimestamp`, `title`, `toUpper`, `toLower` and `printf` from Prometheus'
`template/template.go`, so an annotation copied from a Prometheus rule file reads the same
here (`tests/test_annotations.py` runs Debian's `promtool test rules` on the same templates
and values and compares). Go's `%.4g` and Python's `.4g` agree on these values.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import Decimal

_BIG = ("k", "M", "G", "T", "P", "E", "Z", "Y")
_SMALL = ("m", "u", "n", "p", "f", "a", "z", "y")


def _float(value) -> float:
    """Prometheus' convertToFloat: numbers, and strings that parse as one."""
    if isinstance(value, bool):
        raise ValueError(f"can't convert {value!r} to float")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"can't convert {value!r} to float") from None


def _g4(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return format(v, ".4g")


def _small(v: float) -> tuple[float, str]:
    prefix = ""
    for p in _SMALL:
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return v, prefix


def humanize(value) -> str:
    """`1234567` -> `1.235M`, `0.00012` -> `120u` (SI prefixes, 4 significant digits)."""
    v = _float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in _BIG:
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    v, prefix = _small(v)
    return _g4(v) + prefix


def humanize1024(value) -> str:
    """`1048576` -> `1Mi` (binary prefixes)."""
    v = _float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(value) -> str:
    """Seconds as `1d 2h 3m 4s`, `2m 5s`, `42.5s` or `250ms`."""
    v = _float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    v, prefix = _small(v)
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(value) -> str:
    """`0.1234` -> `12.34%`."""
    return _g4(_float(value) * 100) + "%"


def humanize_timestamp(value) -> str:
    """Epoch seconds as Go prints a UTC time, to the millisecond as Prometheus keeps times:
    `2023-11-14 22:13:20.25 +0000 UTC`."""
    v = _float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    ms = int(int(v * 1e9) / 1_000_000)  # Prometheus' model.Time: milliseconds, toward zero
    seconds, rest = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    fraction = f"{rest:03d}".rstrip("0")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if fraction else "") + " +0000 UTC"


def title(value) -> str:
    """Go's strings.Title: the first letter of every word upper-cased."""
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), str(value))


_VERB = re.compile(r"%[-+# 0]*\d*(?:\.\d+)?[vdsfgeEGxXqt%]")


def printf(value, fmt: str = "%v") -> str:
    """Go's `printf` for the common verbs (`%.2f`, `%d`, `%s`, `%v`), with one value."""
    def verb(match):
        spec = match.group(0)
        kind = spec[-1]
        if kind == "%":
            return "%"
        if kind in "vq" or kind == "t":
            text = _go_value(value)
            return f'"{text}"' if kind == "q" else text
        if kind in "dxX":
            return (spec[:-1] + kind) % int(_float(value))
        if kind in "feEgG":
            return spec % _float(value)
        return spec % str(value)
    return _VERB.sub(verb, str(fmt))


def _go_value(value) -> str:
    """How Go's %v prints a value: a float in its shortest form, with an exponent from 1e+06
    on and under 1e-04 (`0.31`, `123456`, `1.234567e+06`)."""
    if not isinstance(value, float):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return _g4(value)
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digits)).rstrip("0") or "0"
    exp10 = len("".join(map(str, Decimal(repr(value)).as_tuple()[1]))) + exponent - 1
    head = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{head}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    text = format(abs(Decimal(repr(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return head + text


FILTERS = {
    "humanize": humanize, "humanize1024": humanize1024, "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage, "humanizeTimestamp": humanize_timestamp,
    "title": title, "toUpper": lambda v: str(v).upper(), "toLower": lambda v: str(v).lower(),
    "printf": printf,
}
