"""A tiny plain-text formatter for notifications, shared by the built-in notifiers.

`title(n)` is the one-line headline, `incident_line(inc, kind)` describes one incident
("payment_success_drop provider=adyen: payment_success_ratio 0.31, expected 0.97-1, ...
(since 14:02:10)"), `body_lines(n)` is the message body as lines. Times are shown in the
host's local time. (A later issue replaces this with Jinja2 templates.)
"""

from __future__ import annotations

import time

from .durations import format_duration
from .model import Incident, Notification

_HIDDEN_LABELS = {"rule", "alertname", "severity"}


def status_of(incident: Incident, kind: str) -> str:
    """What to call one incident of a notification: resolved, flapping, or else `kind`
    (firing for the incidents of a flapping notice or a digest)."""
    if incident.state == "resolved" or incident.resolved_at is not None:
        return "resolved"
    if getattr(incident, "flapping", False):
        return "flapping"
    return "firing" if kind in ("flapping", "digest") else kind


def fmt_time(ts: float | None, ref: float | None = None) -> str:
    """`14:02:10` (local time); with the date when `ts` is more than 20h before `ref`."""
    if ts is None:
        return "?"
    if ref is not None and ref - ts > 20 * 3600:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
    return time.strftime("%H:%M:%S", time.localtime(ts))


def labels_text(incident: Incident) -> str:
    """`provider=adyen sku=42`: the series labels, without rule and severity."""
    return " ".join(f"{k}={v}" for k, v in sorted(incident.labels.items())
                    if k not in _HIDDEN_LABELS and not k.startswith("__"))


def subject_of(incident: Incident) -> str:
    """`payment_success_drop provider=adyen`."""
    labels = labels_text(incident)
    return f"{incident.rule} {labels}" if labels else incident.rule


def incident_line(incident: Incident, kind: str, ref: float | None = None) -> str:
    """One incident on one line, without the status tag."""
    start = incident.started_at
    if status_of(incident, kind) == "resolved":
        end = incident.resolved_at if incident.resolved_at is not None else ref
        lasted = format_duration(max(0.0, end - start)) if end is not None else "?"
        detail = f"lasted {lasted} (from {fmt_time(start, ref)})"
    else:
        reason = incident.reason or (f"value {incident.last_value:g}"
                                     if incident.last_value is not None else "anomalous")
        detail = f"{reason} (since {fmt_time(start, ref)})"
    return f"{subject_of(incident)}: {detail}"


def title(n: Notification) -> str:
    """The notification's own title, or `[FIRING:2] rule` / `[RESOLVED] rule labels`."""
    if n.title:
        return " ".join(n.title.split())
    tag = n.kind.upper()
    if not n.incidents:
        return f"[{tag}] alertd notification"
    rules = sorted({i.rule for i in n.incidents})
    if len(n.incidents) == 1:
        return f"[{tag}] {subject_of(n.incidents[0])}"
    return f"[{tag}:{len(n.incidents)}] {', '.join(rules)}"


def tagged_lines(n: Notification) -> list[str]:
    """One `[FIRING] ...` line per incident, or `[KIND] title: text` when there is none."""
    if not n.incidents:
        text = " ".join(n.text.split())
        return [f"[{n.kind.upper()}] {title(n)}" + (f": {text}" if text else "")]
    return [f"[{status_of(i, n.kind).upper()}] {incident_line(i, n.kind, n.created_at)}"
            for i in n.incidents]


def body_lines(n: Notification) -> list[str]:
    """The body: per incident its tagged line, severity and annotations.

    `n.text` is used only for a notification without incidents (e.g. a test message), so
    a router-written text never duplicates the incident lines.
    """
    if not n.incidents:
        return n.text.splitlines() or [title(n)]
    lines: list[str] = []
    for inc, line in zip(n.incidents, tagged_lines(n)):
        if lines:
            lines.append("")
        lines.append(line)
        if inc.severity:
            lines.append(f"  severity: {inc.severity}")
        for key in sorted(inc.annotations, key=lambda k: (k != "summary", k)):
            lines.append(f"  {key}: {inc.annotations[key]}")
    return lines


def plain_text(n: Notification) -> str:
    """Title, a blank line, then the body."""
    return "\n".join([title(n), "", *body_lines(n)])
