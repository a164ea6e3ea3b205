"""Building the `Notification` of a group flush: kind, title, text and idempotency key.

The title follows Alertmanager's default: `[FIRING:2] <group label values>` (or the one
incident's rule and labels). Annotations are filled from the incident (`{{ value }}`,
`{{ rule }}`, `{{ severity }}`, `{{ labels.x }}`); richer templates are the notifiers' job.
"""

from __future__ import annotations

import hashlib
import re

from ..model import Incident, Notification

_PLACEHOLDER = re.compile(r"\{\{\s*(value|rule|severity|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}")
_HIDDEN = {"rule", "alertname", "severity"}


def render_annotation(text: str, incident: Incident) -> str:
    """Fill `{{ value }}`, `{{ rule }}`, `{{ severity }}`, `{{ labels.x }}` as plain text."""

    def repl(match):
        if match.group(2):
            return incident.labels.get(match.group(2), "")
        if match.group(1) == "value":
            v = incident.last_value
            return "" if v is None else f"{v:.4g}"
        return str(getattr(incident, match.group(1)))

    return _PLACEHOLDER.sub(repl, text)


def describe(incident: Incident) -> str:
    """`rule label=value ...` for one incident."""
    labels = " ".join(f"{k}={v}" for k, v in sorted(incident.labels.items()) if k not in _HIDDEN)
    return f"{incident.rule} {labels}".strip()


def group_fingerprint(key: str, created_at: float) -> str:
    """One group's lifetime: a group deleted when empty and made again gets a new one, so its
    notices never reuse an earlier idempotency key."""
    return hashlib.sha256(f"{key}@{created_at!r}".encode()).hexdigest()[:16]


def idempotency_key(fingerprint: str, kind: str, sequence: int) -> str:
    """Fingerprint + state change + sequence: the same for every retry of one notice."""
    return f"{fingerprint}:{kind}:{sequence}"


def member_status(incident: Incident) -> str:
    if incident.state == "resolved":
        return "resolved"
    return "flapping" if incident.flapping else "firing"


def build_notification(receiver: str, kind: str, key: str, incidents: list[Incident],
                       group_key: str, group_labels: dict[str, str], now: float) -> Notification:
    """A notification for one group flush; incidents are copied with annotations filled."""
    shown = []
    for incident in sorted(incidents, key=lambda i: (i.state == "resolved", i.rule, sorted(i.labels.items()))):
        inc = object.__new__(Incident)  # a shallow snapshot: the state machine keeps changing the original
        inc.__dict__.update(incident.__dict__)
        if incident.annotations:
            inc.annotations = {k: render_annotation(v, incident) for k, v in incident.annotations.items()}
        shown.append(inc)
    firing = sum(1 for i in shown if i.state != "resolved")
    tag = kind.upper() + (f":{firing}" if kind in ("firing", "flapping") and len(shown) > 1 else "")
    if len(shown) == 1:
        subject = describe(shown[0])
    else:
        values = [v for k, v in sorted(group_labels.items()) if k not in ("alertname",)]
        subject = " ".join(values) if values else ", ".join(sorted({i.rule for i in shown}))
    lines = []
    for inc in shown:
        text = inc.annotations.get("summary") or inc.reason
        lines.append(f"[{member_status(inc).upper()}] {describe(inc)}: {text}" if len(shown) > 1 else text)
    return Notification(receiver, kind, key, tuple(shown), f"[{tag}] {subject}", "\n".join(lines), now,
                        group_key, dict(group_labels))
