"""The route tree, matched as Alertmanager matches it.

An alert enters at the root (which matches everything). A node matches when all its
matchers match; the search descends depth-first, left to right: the first matching child
takes the alert and the search stops there unless that child has `continue: true`. A node
none of whose children matched handles the alert itself. Each node has a stable id (the
matchers of its path plus its position, like Alertmanager's route ID), so groups found in
the store after a reload or restart still belong to the same node when the node is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config.routing import RouteConfig
from ..matchers import go_quote
from ..model import Incident


def routing_labels(labels: dict[str, str], rule: str, severity: str) -> dict[str, str]:
    """The labels routes, silences and inhibit rules match on: the series and rule labels,
    plus `rule`, `alertname` (the same, for Alertmanager habits) and `severity` (when set;
    an alert posted without one has none)."""
    out = {**labels, "rule": rule, "alertname": rule}
    if severity:
        out["severity"] = severity
    return out


def alert_labels(incident: Incident) -> dict[str, str]:
    """An incident's routing labels (`routing_labels`)."""
    return routing_labels(incident.labels, incident.rule, incident.severity)


@dataclass
class Route:
    """A compiled node: its settings, its id and its children."""

    config: RouteConfig
    id: str
    key: str
    children: list["Route"] = field(default_factory=list)

    def match(self, labels: dict[str, str]) -> list["Route"]:
        """The nodes that handle `labels` below this (matching) node."""
        found: list[Route] = []
        for child in self.children:
            if all(m.matches(labels) for m in child.config.matchers):
                found += child.match(labels)
                if not child.config.continue_:
                    break
        return found or [self]

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        """The labels that define the alert's group on this route (all with `...`)."""
        if self.config.group_by_all:
            return dict(labels)
        return {name: labels[name] for name in self.config.group_by if name in labels}

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


_OP_ORDER = {"=": 0, "!=": 1, "=~": 2, "!~": 3}  # Alertmanager's MatchType values


def _matchers_text(config: RouteConfig) -> str:
    """Alertmanager's `Matchers.String()`: sorted by name, value, type; values as Go quotes."""
    ordered = sorted(config.matchers, key=lambda m: (m.name, m.value, _OP_ORDER[m.op]))
    return "{" + ",".join(f"{m.name}{m.op}{go_quote(m.value)}" for m in ordered) + "}"


def compile_tree(root: RouteConfig) -> Route:
    """Compile a validated route tree into matchable nodes with stable ids."""

    def build(config: RouteConfig, parent_key: str | None, position: int | None) -> Route:
        key = _matchers_text(config) if parent_key is None else f"{parent_key}/{_matchers_text(config)}"
        node = Route(config, key if position is None else f"{key}/{position}", key)
        node.children = [build(child, key, i) for i, child in enumerate(config.routes)]
        return node

    return build(root, None, None)


def group_key(route: Route, labels: dict[str, str]) -> str:
    """The store's key of a group: `<route id>:{label="value",...}` (the id has the route's
    position, so two routes with the same matchers never share a group; the notices carry
    Alertmanager's own `groupKey`, see `alertd.render.payloads.am_group_key`)."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{route.id}:{{{inner}}}"
