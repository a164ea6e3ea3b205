"""JSON shapes the webhook, command and alertmanager notifiers send.

- `alertd_payload`: alertd's own format (version "1"), documented in docs/notifications.md.
- `alertmanager_webhook`: Alertmanager's webhook format, version "4", so receivers written
  for Alertmanager work unchanged.
- `alertmanager_alerts`: the body of Alertmanager's `POST /api/v2/alerts` (postable alerts).

Alertmanager labels are `alertname` (the rule), `severity` and the series labels; label
names are made valid Prometheus names and empty values are dropped (they mean "absent").
"""

from __future__ import annotations

import functools
import re

from alertd.matchers import go_quote
from alertd.model import Incident, Notification
from alertd.render.view import fmt_iso, incident_url, status_of

_BAD_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")
ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends as endsAt of a firing alert


def label_name(name: str) -> str:
    """A valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`)."""
    name = _BAD_NAME_CHARS.sub("_", str(name)) or "_"
    return f"_{name}" if name[0].isdigit() else name


def am_labels(incident: Incident) -> dict[str, str]:
    labels = {label_name(k): str(v) for k, v in sorted(incident.labels.items()) if str(v) != ""}
    labels["alertname"] = incident.rule
    if incident.severity:
        labels["severity"] = incident.severity
    return dict(sorted(labels.items()))


def alertd_payload(n: Notification, view: dict, title: str, text: str) -> dict:
    """alertd's own JSON: the notification, its rendered title/text and every incident."""
    incidents = []
    for inc, v in zip(n.incidents, _views_in_order(n, view)):
        incidents.append(item := {
            "id": inc.id, "fingerprint": inc.fingerprint, "rule": inc.rule, "state": inc.state,
            "status": v["status"], "severity": inc.severity, "labels": dict(sorted(inc.labels.items())),
            "annotations": dict(sorted(inc.annotations.items())),
            "started_at": fmt_iso(inc.started_at), "fired_at": fmt_iso(inc.fired_at),
            "resolved_at": fmt_iso(inc.resolved_at), "resolution": inc.resolution, "value": inc.last_value,
            "expected_low": inc.expected_low, "expected_high": inc.expected_high,
            "score": inc.score, "peak_score": inc.peak_score, "threshold": inc.threshold,
            "reason": inc.reason, "count": inc.count,
            "silence_command": v["silence_command"], "ack_command": v["ack_command"] or None,
            "url": v["url"] or None,
        })
        if inc.crossing_at is not None:  # an early warning: when its line is expected to be crossed
            item["crossing_at"] = fmt_iso(inc.crossing_at)
    return {
        "version": "1", "receiver": n.receiver, "kind": n.kind, "status": view["headline"].lower(),
        "idempotency_key": n.idempotency_key, "created_at": fmt_iso(n.created_at),
        "title": title, "text": text, "common_labels": view["common_labels"],
        "silence_command": view["silence_command"] or None, "silence_url": view["silence_url"] or None,
        "incidents": incidents,
    }


def _views_in_order(n: Notification, view: dict) -> list[dict]:
    """The incident views in the notification's own order (the view sorts them)."""
    by_key = {(v["fingerprint"], v["id"]): v for v in view["incidents"]}
    return [by_key[(i.fingerprint, i.id)] for i in n.incidents]


def am_group_labels(grouping: dict[str, str]) -> dict[str, str]:
    """A group's labels as Alertmanager shows them (`groupLabels`): the `group_by` labels
    that its alerts carry. `rule` is alertd's routing label and no alert carries it; it
    always equals `alertname`, so grouping by `rule` shows as grouping by `alertname`.
    Empty values mean "absent" and are left out; names are made valid Prometheus names."""
    out = {}
    for name, value in grouping.items():
        if str(value) != "":
            out[label_name("alertname" if name == "rule" else name)] = str(value)
    return dict(sorted(out.items()))


def label_set_text(labels: dict[str, str]) -> str:
    """Prometheus' `LabelSet.String()`: `{a="1", b="2"}`, pairs sorted as text, values
    quoted as Go quotes them."""
    return "{" + ", ".join(sorted(f"{k}={go_quote(str(v))}" for k, v in labels.items())) + "}"


def am_group_key(route_key: str, grouping: dict[str, str]) -> str:
    """Alertmanager's `groupKey`: the route's key (the matchers of its path, no positions)
    and the group's labels, `{}/{severity="critical"}:{alertname="NodeDown"}`."""
    return f"{route_key}:{label_set_text(am_group_labels(grouping))}"


def group_labels(n: Notification) -> dict[str, str]:
    """The labels the notice's group was formed by, as Alertmanager shows them ({} when the
    route has no `group_by`)."""
    return am_group_labels(dict(getattr(n, "group_labels", None) or {}))


def _common(dicts: list[dict]) -> dict:
    if not dicts:
        return {}
    common = dict(dicts[0])
    for d in dicts[1:]:
        common = {k: v for k, v in common.items() if d.get(k) == v}
    return dict(sorted(common.items()))


def generator_url(incident: Incident, external_url: str | None, pages_url: str = "") -> str:
    """The link of an alert: its sender's (a posted alert's generatorURL), the incident's
    dashboard, its page in alertd (`http.external_url`), or the notifier's external URL."""
    return (getattr(incident, "generator_url", None) or incident.annotations.get("dashboard_url")
            or incident_url(pages_url, incident.id) or external_url or "")


def _label_set_before(a: dict, b: dict) -> int:
    """Prometheus' `LabelSet.Before` as a comparison: fewer labels first, then by value
    along the sorted union of names."""
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    for name in sorted({*a, *b}):
        if name not in a:
            return -1
        if name not in b:
            return 1
        if a[name] != b[name]:
            return -1 if a[name] < b[name] else 1
    return 0


def _am_before(x: dict, y: dict) -> int:
    """Alertmanager's order of a notice's alerts (`types.AlertSlice`): by `job`, then
    `instance` (alerts with the label first), then by labels."""
    a, b = x["labels"], y["labels"]
    for key in ("job", "instance"):
        if key not in a and key not in b:
            continue
        if key not in a:
            return 1
        if key not in b:
            return -1
        if a[key] != b[key]:
            return -1 if a[key] < b[key] else 1
    return _label_set_before(a, b)


def alertmanager_webhook(n: Notification, *, external_url: str = "", max_alerts: int = 0) -> dict:
    """Alertmanager's webhook body (version 4) for `n`."""
    alerts = []
    for inc in n.incidents:
        resolved = status_of(inc, n.kind) == "resolved"
        alerts.append({
            "status": "resolved" if resolved else "firing",
            "labels": am_labels(inc),
            "annotations": dict(sorted(inc.annotations.items())),
            "startsAt": fmt_iso(inc.started_at),
            "endsAt": fmt_iso(inc.resolved_at if inc.resolved_at is not None else n.created_at)
            if resolved else ZERO_TIME,
            "generatorURL": generator_url(inc, external_url, n.external_url),
            "fingerprint": inc.fingerprint,
        })
    alerts.sort(key=functools.cmp_to_key(_am_before))
    shown = alerts[:max_alerts] if max_alerts else alerts
    groups = group_labels(n)
    key = n.group_key if n.group_key.startswith("{") else am_group_key("{}", groups)
    return {
        "version": "4", "groupKey": key, "truncatedAlerts": len(alerts) - len(shown),
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": re.sub(r"([.+*?()|\[\]{}^$\\])", r"\\\1", n.receiver), "groupLabels": groups,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url or n.external_url, "alerts": shown,
    }


def alertmanager_alerts(n: Notification, *, ends_after: float, external_url: str | None,
                        summaries: dict[str, str] | None = None) -> list[dict]:
    """Postable alerts for Alertmanager's API v2.

    A firing alert ends `ends_after` seconds after the notice unless alertd sends it again
    (a repeat) or resolves it. Times are clamped to the notice's time: data time may run
    ahead of the wall clock (a simulator), and Alertmanager must see a resolve as past.
    """
    out = []
    for inc in n.incidents:
        resolved = status_of(inc, n.kind) == "resolved"
        annotations = dict(sorted(inc.annotations.items()))
        if summaries and inc.fingerprint in summaries:
            annotations.setdefault("summary", summaries[inc.fingerprint])
        if inc.reason:
            annotations.setdefault("description", inc.reason)
        start = min(inc.started_at, n.created_at)
        if resolved:
            end = min(inc.resolved_at if inc.resolved_at is not None else n.created_at, n.created_at)
            end = max(end, start)
        else:
            end = n.created_at + ends_after
        alert = {"labels": am_labels(inc), "annotations": annotations,
                 "startsAt": fmt_iso(start), "endsAt": fmt_iso(end)}
        url = generator_url(inc, external_url, n.external_url)
        if url:
            alert["generatorURL"] = url
        out.append(alert)
    return out
