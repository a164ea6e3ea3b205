"""Routing: which receivers get a state change, and the notification each one gets.

The route tree follows Alertmanager: a node matches when all its matchers match the
incident's labels (plus `rule` and `severity`); matching descends depth-first into the first
matching child (and further children when that child has `continue: true`); a node with no
matching child handles the alert itself with its receiver.
"""

from __future__ import annotations

import re

from .alerts import Transition
from .config import RouteConfig
from .model import Incident, Notification

_PLACEHOLDER = re.compile(r"\{\{\s*(value|rule|severity|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}")


def alert_labels(incident: Incident) -> dict[str, str]:
    """The labels routes and silences match on: series labels, rule labels, rule, severity."""
    return {**incident.labels, "rule": incident.rule, "severity": incident.severity}


def match_route(route: RouteConfig, labels: dict[str, str]) -> list[str]:
    """Receivers for `labels` under `route` (assumed matching), Alertmanager-style."""
    receivers: list[str] = []
    for child in route.routes:
        if all(m.matches(labels) for m in child.matchers):
            receivers += match_route(child, labels)
            if not child.continue_:
                break
    return receivers or [route.receiver]


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
    labels = " ".join(f"{k}={v}" for k, v in sorted(incident.labels.items()))
    return f"{incident.rule} {labels}".strip()


class Router:
    """Turns transitions into notifications, one per receiver the route tree selects."""

    def __init__(self, routes: RouteConfig):
        self.routes = routes

    def route(self, transition: Transition, now: float) -> list[Notification]:
        incident = transition.incident
        incident.annotations = {k: render_annotation(v, incident) for k, v in incident.annotations.items()}
        title = f"[{transition.kind.upper()}] {describe(incident)}"
        text = incident.annotations.get("summary") or incident.reason
        key = f"{incident.fingerprint}:{incident.id}:{transition.kind}"
        seen, out = set(), []
        for receiver in match_route(self.routes, alert_labels(incident)):
            if receiver in seen:
                continue
            seen.add(receiver)
            out.append(Notification(receiver, transition.kind, key, (incident,), title, text, now))
        return out
