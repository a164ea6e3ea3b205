"""Bodies of Alertmanager's API, read as Alertmanager reads them, with its status codes.

`parse_alerts(data)` turns the JSON of `POST /api/v2/alerts` (or `/api/v1/alerts`) into
`PostedAlert`s. Like Alertmanager, it rejects a body that is not a list of alert objects of
the right types as a whole (`AmError`: 400, or 422 for a missing `labels` or a
`generatorURL` that is not a URI), and then checks each alert on its own: valid alerts are
accepted even when others are not (`invalid` lists the others, answered with 400). Every
message is one sentence saying what is wrong, where, and what to do.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ..engine.intake import PostedAlert

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$")
_HINT = 'post a JSON list such as [{"labels": {"alertname": "HighCPU"}, "startsAt": "2025-01-01T00:00:00Z"}]'


class AmError(Exception):
    """A body rejected as a whole: `status` (400 or 422) and one sentence."""

    def __init__(self, status: int, message: str, plain: bool = False):
        super().__init__(message)
        # plain: Alertmanager answers a JSON string (its own validation), else {code, message}
        self.status, self.message, self.plain = status, message, plain


def parse_time(value, where: str) -> float | None:
    """RFC 3339 (up to nanoseconds) -> epoch seconds; Go's zero time (year 1) is None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise AmError(400, f"{where} must be a time string such as \"2025-01-01T00:00:00Z\", "
                           f"not {type(value).__name__}; {_HINT}")
    match = _TIME.match(value.strip())
    if not match:
        raise AmError(400, f"{where} \"{value[:40]}\" is not an RFC 3339 time; write it as "
                           "2025-01-01T00:00:00Z (or with an offset such as +02:00)")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    if int(year) <= 1:
        return None
    try:
        tz = timezone.utc if zone in ("Z", "z") else datetime.strptime(zone.replace(":", ""), "%z").tzinfo
        ts = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
    except ValueError as exc:
        raise AmError(400, f"{where} \"{value[:40]}\" is not a valid time ({exc}); write it as "
                           "2025-01-01T00:00:00Z") from None
    return ts.timestamp() + (int(frac.ljust(9, "0")) / 1e9 if frac else 0.0)


def _string_map(value, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AmError(400, f"{where} must be an object of label names to string values, not "
                           f"{type(value).__name__}; {_HINT}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise AmError(400, f"{where}.{name} must be a string, not {type(item).__name__} "
                               f"({str(item)[:20]}); quote the value")
    return value


def _describe(labels: dict) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in list(labels.items())[:4])
    return "{" + inner + (", ..." if len(labels) > 4 else "") + "}"


def check_alert(alert: PostedAlert) -> str | None:
    """Why Alertmanager would refuse this alert (`types.Alert.Validate`), or None."""
    if not alert.labels:
        return "it has no labels; give it at least one, such as alertname"
    for kind, mapping in (("label", alert.labels), ("annotation", alert.annotations)):
        for name, value in mapping.items():
            if not LABEL_NAME.match(name):
                return (f'the {kind} name "{name[:40]}" is not valid; use letters, digits and '
                        "underscores, not starting with a digit")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f'the {kind} "{name}" has a value that is not valid UTF-8'
    if alert.ends_at is not None and alert.starts_at is not None and alert.ends_at < alert.starts_at:
        return "its endsAt is before its startsAt; send endsAt after startsAt (or leave it out)"
    return None


def parse_alerts(data, *, v1: bool = False) -> tuple[list[PostedAlert], list[str]]:
    """(valid alerts, one sentence per invalid alert) of a posted body; AmError for a body
    refused as a whole."""
    if not isinstance(data, list):
        raise AmError(400, f"the body must be a JSON list of alerts, not {type(data).__name__}; {_HINT}")
    alerts, invalid = [], []
    for i, item in enumerate(data):
        where = f"alert {i}"
        if not isinstance(item, dict):
            raise AmError(400, f"{where} must be an object with labels, not {type(item).__name__}; {_HINT}")
        if "labels" not in item and not v1:
            raise AmError(422, f"{where} has no labels; every alert needs \"labels\", such as "
                               "{\"alertname\": \"HighCPU\"}")
        labels = {k: v for k, v in _string_map(item.get("labels"), f"{where}.labels").items() if v != ""}
        annotations = _string_map(item.get("annotations"), f"{where}.annotations")
        url = item.get("generatorURL") or ""
        if not isinstance(url, str):
            raise AmError(400, f"{where}.generatorURL must be a string, not {type(url).__name__}")
        if url and not v1 and not _is_uri(url):
            raise AmError(422, f"{where}.generatorURL \"{url[:60]}\" is not a URI; send an absolute "
                               "URL such as http://prometheus:9090/graph?g0.expr=...")
        alert = PostedAlert(labels, dict(annotations), parse_time(item.get("startsAt"), f"{where}.startsAt"),
                            parse_time(item.get("endsAt"), f"{where}.endsAt"), url)
        problem = check_alert(alert)
        if problem:
            invalid.append(f"alert {i} {_describe(labels)} was refused: {problem}")
        else:
            alerts.append(alert)
    return alerts, invalid


def _is_uri(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return bool(parts.scheme) and " " not in text
