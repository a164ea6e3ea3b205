"""Building the `Notification` of a group flush: kind, title, text and idempotency key.

The title follows Alertmanager's default: `[FIRING:2] <group label values>` (or the one
incident's rule and labels). The rule's annotations are Jinja2 templates rendered for each
incident (`alertd.render.annotations`: `{{ value }}`, `{{ $labels.x }}`, `humanize`, ...);
the notice's own layout is the notifiers' templates' job.
"""

from __future__ import annotations

import hashlib

from ..model import Incident, Notification
from ..render.annotations import render_annotation, render_annotations  # noqa: F401 (re-exported)

_HIDDEN = {"rule", "alertname", "severity"}


def external_url_of(config) -> str:
    """`http.external_url` of a config ("" when there is none, or no config)."""
    return getattr(getattr(config, "http", None), "external_url", "") or ""


def describe(incident: Incident) -> str:
    """`rule label=value ...` for one incident."""
    return f"{incident.rule} {_labels_view(incident.labels)[1]}".strip()


# Labels dicts seen by notices, by identity: (the dict, its sorted items, "k=v ..." text).
# An incident's labels dict is never changed in place (the state machine makes a new one),
# and the entry holds the dict, so its id cannot be reused while it is here. A storm shows
# every incident of a group in each of its notices: sorting and joining is done once. The
# memo lives for one flush (`forget_label_views`): held longer, it kept every incident's
# labels the daemon ever notified about (the real-time soak's RSS grew with it).
_LABELS_SEEN: dict[int, tuple] = {}


def forget_label_views() -> None:
    """End of a flush: let the incidents' labels go."""
    _LABELS_SEEN.clear()


def _labels_view(labels: dict[str, str]) -> tuple[list, str]:
    seen = _LABELS_SEEN.get(id(labels))
    if seen is not None and seen[0] is labels:
        return seen[1], seen[2]
    items = sorted(labels.items())
    text = " ".join(f"{k}={v}" for k, v in items if k not in _HIDDEN)
    if len(_LABELS_SEEN) >= 50_000:
        _LABELS_SEEN.clear()
    _LABELS_SEEN[id(labels)] = (labels, items, text)
    return items, text


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
                       group_key: str, group_labels: dict[str, str], now: float, *,
                       external_url: str = "", log=None) -> Notification:
    """A notification for one group flush; incidents are copied with annotations rendered.
    `external_url` is where alertd's pages are (`http.external_url`): notices link there."""
    shown = []
    for incident in sorted(incidents, key=lambda i: (i.state == "resolved", i.rule, _labels_view(i.labels)[0])):
        inc = object.__new__(Incident)  # a shallow snapshot: the state machine keeps changing the original
        inc.__dict__.update(incident.__dict__)
        if incident.annotations:
            inc.annotations = render_annotations(incident, external_url=external_url, log=log)
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
                        group_key, dict(group_labels), external_url)
