"""Bodies of push requests -> samples, all or nothing: JSON lines or Prometheus text.

A JSON line is one object: `{"name": "orders_total", "value": 3, "labels": {"region": "eu"},
"ts": 1717400000}` (`labels` and `ts` optional; `ts` in epoch seconds, milliseconds or
ISO 8601; without it, the time of arrival). A JSON array of such objects is accepted too.
Any bad line rejects the whole body with a `PushError` naming the line, so a client never
has to guess which part was stored; so does a point stamped after `not_after` (the daemon's
clock plus a few minutes: one point stamped in 2100 would make every later point of its
series out of order).
"""

from __future__ import annotations

import json
import math
import re
import sys
from datetime import datetime, timezone
from urllib.parse import unquote

from .. import jsontext
from ..model import Sample, make_labels
from .common import excerpt, parse_timestamp
from .promtext import ExpositionError, parse_exposition
from .sample_checks import TS_MAX, TS_MIN

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_KEYS = {"name", "value", "labels", "ts", "timestamp"}


class PushError(ValueError):
    """A push body that cannot be stored; the message says where and what (HTTP 400).
    `reason` is "bad_body" or "future_timestamp"; `count` how many points it concerns."""

    def __init__(self, message: str, reason: str = "bad_body", count: int = 0):
        super().__init__(message)
        self.reason, self.count = reason, count


def header(request, name: bytes) -> bytes | None:
    """The value of header `name` (lower-case bytes) of an h11 request, or None."""
    for key, value in request.headers:
        if key == name:
            return value
    return None


def grouping_labels(path: str) -> dict[str, str]:
    """Labels of a Pushgateway path /metrics/job/<job>/<label>/<value>... (URL-decoded)."""
    parts = [unquote(p) for p in path[len("/metrics/"):].split("/")]
    if len(parts) % 2 or not all(parts[0::2]) or not parts[1]:
        raise PushError("the path must be /metrics/job/<job> followed by /<label>/<value> pairs")
    labels = {}
    for key, value in zip(parts[0::2], parts[1::2]):
        if key.endswith("@base64"):
            raise PushError("base64-encoded grouping labels are not supported; send the value plainly")
        labels[key] = value
    return labels


SLICE = 500  # lines (or array items) parsed between two pauses of `parse_steps` (a few ms)


def parse_body(body: bytes, content_type: str, now: float, extra_labels=None,
               not_after: float | None = None) -> list[Sample]:
    """Samples of a push body; JSON or Prometheus text by content type (or by a sniff).
    With `not_after`, a point stamped later refuses the whole body (reason future_timestamp)."""
    steps = parse_steps(body, content_type, now, extra_labels, not_after)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def parse_steps(body: bytes, content_type: str, now: float, extra_labels=None, not_after: float | None = None):
    """`parse_body` as a generator that pauses (yields None) after every SLICE lines, so an
    event loop can parse a 10 MB body in slices between other work; its return value (the
    StopIteration's) is the samples. Raises PushError as parse_body does."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PushError(f"the body is not UTF-8 (byte {exc.start}: {excerpt(body[max(exc.start - 20, 0):exc.start + 20])})") from None
    kind = content_type.split(";")[0].strip().lower()
    samples: list[Sample] = []
    if kind in ("application/json", "application/x-ndjson", "application/jsonlines",
                "application/jsonl") or (kind not in ("text/plain", "application/openmetrics-text")
                                         and text.lstrip()[:1] in ("{", "[")):
        for part in _json_slices(text, now):
            part = [Sample(s.name, make_labels({**dict(s.labels), **extra_labels}), s.ts, s.value)
                    for s in part] if extra_labels else part
            _refuse_late(part, now, not_after)
            samples += part
            yield
    else:
        lines = text.split("\n")
        for start in range(0, len(lines), SLICE):
            try:
                part = parse_exposition("\n".join(lines[start:start + SLICE]), now, extra_labels, start + 1)
            except ExpositionError as exc:
                raise PushError(str(exc)) from None
            for s in part:
                if not math.isfinite(s.value):
                    raise PushError(f"{s.key} has the value {s.value}; push finite numbers only")
                if not TS_MIN <= s.ts <= TS_MAX:
                    raise PushError(f"{s.key} has the timestamp {s.ts * 1000:.0f} (ms), which is not a time "
                                    "between the years 1 and 9999; send milliseconds since 1970 or none")
            _refuse_late(part, now, not_after)
            samples += part
            yield
    return samples


def _refuse_late(samples: list[Sample], now: float, not_after: float | None) -> None:
    if not_after is None:
        return
    late = [s for s in samples if s.ts > not_after]
    if late:
        when = datetime.fromtimestamp(late[0].ts, timezone.utc).isoformat(timespec="seconds")
        raise PushError(f"{len(late)} point(s) are stamped more than {not_after - now:.0f}s ahead of alertd's "
                        f"clock, the first {late[0].key} at {when}; check the sender's clock or leave "
                        "ts out (the time of arrival is used)", "future_timestamp", len(late))


def parse_json_lines(text: str, now: float) -> list[Sample]:
    """Samples of JSON lines (or one JSON array of objects); PushError on the first bad one."""
    return [s for part in _json_slices(text, now) for s in part]


def _json_slices(text: str, now: float):
    """Samples of JSON lines (or one JSON array of objects), SLICE lines at a time."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = jsontext.loads(stripped)
        except ValueError as exc:
            raise PushError(f"the body is not a JSON array ({exc})") from None
        if not isinstance(items, list):
            raise PushError("the body is not a JSON array of objects")
        for start in range(0, len(items), SLICE):
            yield [_sample(item, f"item {i}", now) for i, item in enumerate(items[start:start + SLICE], start)]
        return
    loads = jsontext.loads
    lines = text.split("\n")
    for start in range(0, len(lines), SLICE):
        out = []
        for number, line in enumerate(lines[start:start + SLICE], start + 1):
            if not line.strip():
                continue
            try:
                item = loads(line)
            except ValueError as exc:
                raise PushError(f"line {number} is not JSON ({exc.msg}): {excerpt(line, 60)}") from None
            out.append(_sample(item, f"line {number}", now))
        yield out


def _sample(item, where: str, now: float) -> Sample:
    if not isinstance(item, dict):
        raise PushError(f"{where} is not an object like {{\"name\": ..., \"value\": ...}}: "
                        f"{excerpt(json.dumps(item), 60)}")
    name, value, labels = item.get("name"), item.get("value"), item.get("labels") or {}
    if not isinstance(name, str) or not _NAME.match(name):
        raise PushError(f'{where}: "name" must be a metric name like orders_total, got {excerpt(str(name), 40)}')
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= sys.float_info.max:
        raise PushError(f'{where}: "value" of {name} must be a finite number, got {excerpt(json.dumps(value), 40)}')
    if not _KEYS.issuperset(item):
        unknown = sorted(set(item) - _KEYS)
        raise PushError(f"{where}: unknown key {unknown[0]!r}; the keys are name, value, labels, ts")
    if not isinstance(labels, dict):
        raise PushError(f'{where}: "labels" must be an object of strings')
    for key, val in labels.items():
        if not _LABEL.match(key):
            raise PushError(f"{where}: {key!r} is not a label name (letters, digits, _)")
        if isinstance(val, (dict, list)) or val is None:
            raise PushError(f"{where}: label {key} must be a string, got {excerpt(json.dumps(val), 40)}")
    raw_ts = item.get("ts", item.get("timestamp"))
    ts = now
    if raw_ts is not None:
        try:
            ts = parse_timestamp(raw_ts)
        except ValueError as exc:
            raise PushError(f'{where}: "ts" {exc}') from None
    return Sample(name, make_labels(labels) if labels else (), ts, float(value))
