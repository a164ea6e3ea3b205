"""The Prometheus text exposition format -> samples (for `command` and `push`).

Parsing uses `prometheus_client.parser`; this module adds what alertd needs around it:
samples with canonical labels, a default timestamp for lines that carry none, extra labels
(a push path's `job`), and an error that names the offending line with an excerpt.
"""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from ..model import Sample, make_labels
from .common import excerpt


class ExpositionError(ValueError):
    """The text is not in the Prometheus exposition format; the message names the line."""


_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^{}]*)\})?[ \t]+([^ \t]+)(?:[ \t]+(-?[0-9]+))?[ \t]*\Z")
_PAIR = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"([^"\\]*)"[ \t]*(?:,|\Z)')


def parse_exposition(text: str, now: float, extra_labels: dict[str, str] | None = None,
                     first_line: int = 1) -> list[Sample]:
    """Samples of every line of `text`; lines without a timestamp get `now`.

    `extra_labels` are added to every sample (they win over the line's own labels, as a
    Pushgateway grouping key does). Raises ExpositionError naming the first bad line.
    Plain lines take a fast path; anything unusual (escapes, a bad line) goes through
    `prometheus_client.parser`, which also words the errors. `first_line` is the number of
    the text's first line in a larger body (for the error's line number).
    """
    extra = dict(extra_labels or {})
    fast = _parse_plain(text, now, extra)
    if fast is not None:
        return fast
    out: list[Sample] = []
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = {**s.labels, **extra} if extra else s.labels
                ts = s.timestamp if s.timestamp is not None else now
                out.append(Sample(s.name, make_labels(labels), float(ts), float(s.value)))
    except Exception as exc:  # the parser raises ValueError, IndexError, ...; find the line
        raise ExpositionError(_locate(text, exc, first_line)) from None
    return out


def _parse_plain(text: str, now: float, extra: dict) -> list[Sample] | None:
    """Samples of text made only of comments and simple lines, or None to use the full parser."""
    out = []
    match_line, pairs = _LINE.match, _PAIR.match
    for line in text.split("\n"):
        if not line or line[0] == "#" or line.isspace():
            continue
        m = match_line(line)
        if m is None:
            return None
        name, inner, raw_value, raw_ts = m.groups()
        labels = {}
        if inner and inner.strip():
            end = 0
            while end < len(inner):  # pair after pair, each where the last ended (finditer would
                pair = pairs(inner, end)  # rescan the rest at every position: quadratic)
                if pair is None or pair.end() == end:
                    return None
                labels[pair.group(1)] = pair.group(2)
                end = pair.end()
        try:
            value = float(raw_value)
        except ValueError:
            return None
        if extra:
            labels.update(extra)
        if raw_ts is not None and len(raw_ts) > 16:  # beyond any date: the full parser says so
            return None
        ts = int(raw_ts) / 1000.0 if raw_ts is not None else now
        out.append(Sample(name, make_labels(labels), ts, value))
    return out


def _locate(text: str, exc: Exception, first_line: int = 1) -> str:
    for number, line in enumerate(text.splitlines(), first_line):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            list(text_string_to_metric_families(stripped + "\n"))
        except Exception as line_exc:
            return (f"line {number} is not in the Prometheus text format "
                    f"({_reason(line_exc)}): {excerpt(line, 60)}")
    return f"the text is not in the Prometheus text format ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
