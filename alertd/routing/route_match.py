"""Who gets an alert with these labels, grouped how: Alertmanager's `amtool config routes test`.

`matching_routes(tree, labels)` walks the compiled route tree exactly as the router does
(alertd/routing/tree.py, Alertmanager's `Route.Match`: depth-first, the first matching
child takes the alert unless it has `continue`) and answers, per route that takes the alert,
its receiver, `group_by`, timers, time intervals, the path from the root and the group the
alert would join. `alertd routes test LABELS...`, the routes page and the Alertmanager API's
routes (issue 17) share it. `tree_lines(tree)` draws the tree as `amtool config routes show`.

The labels are an alert's: `rule` and `alertname` name the rule (one given is copied to the
other, as alertd sets both), `severity` and the series labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..matchers import parse_matcher
from .tree import Route, compile_tree, group_key


@dataclass(frozen=True)
class RouteMatch:
    """One route that takes the alert, with what it does with it."""

    route: Route
    path: tuple[Route, ...]  # from the root to this route
    labels: dict[str, str]  # the alert's labels as the router matches them
    group_labels: dict[str, str]  # the labels that make its group on this route

    @property
    def config(self):
        return self.route.config

    @property
    def receiver(self) -> str:
        return self.route.config.receiver

    @property
    def group_by(self) -> list[str]:
        return ["..."] if self.config.group_by_all else list(self.config.group_by)

    @property
    def group_key(self) -> str:
        return group_key(self.route, self.group_labels)

    def as_dict(self) -> dict:
        c = self.config
        return {"receiver": c.receiver, "route": matchers_text(self.route), "route_id": self.route.id,
                "path": [matchers_text(r) for r in self.path], "continue": c.continue_,
                "group_by": self.group_by, "group_labels": self.group_labels,
                "group_wait": c.group_wait, "group_interval": c.group_interval,
                "repeat_interval": c.repeat_interval, "mute_time_intervals": list(c.mute_time_intervals),
                "active_time_intervals": list(c.active_time_intervals)}


def alert_labels_of(labels: dict[str, str]) -> dict[str, str]:
    """The labels as the router sees an alert: `rule` and `alertname` both set when one is."""
    out = {str(k): str(v) for k, v in labels.items()}
    name = out.get("rule") or out.get("alertname")
    if name:
        out.setdefault("rule", name)
        out.setdefault("alertname", name)
    return out


def parse_labels(texts) -> dict[str, str]:
    """`name=value` (or `name="value"`) words, as amtool takes them; ValueError with a sentence."""
    out = {}
    for text in texts:
        try:
            m = parse_matcher(str(text))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a label: {exc}; write name=value") from None
        if m.op != "=":
            raise ValueError(f"{text!r} is a {m.op} matcher; an alert's label is written name=value")
        out[m.name] = m.value
    return out


def matching_routes(tree, labels: dict[str, str]) -> list[RouteMatch]:
    """The routes that take an alert with `labels`, in Alertmanager's order. `tree` is a
    compiled tree (`compile_tree`) or a RouteConfig."""
    root = tree if isinstance(tree, Route) else compile_tree(tree)
    labels = alert_labels_of(labels)
    paths = {}

    def walk(node, path):
        paths[node.id] = path
        for child in node.children:
            walk(child, path + (child,))

    walk(root, (root,))
    return [RouteMatch(node, paths[node.id], labels, node.group_labels(labels)) for node in root.match(labels)]


def matchers_text(route: Route) -> str:
    """A route's matchers as amtool shows them: `{severity="critical",team!="x"}`, or
    `default-route` for the root."""
    ms = route.config.matchers
    if not ms:
        return "default-route"
    ordered = sorted(ms, key=lambda m: (m.name, m.value, m.op))
    return "{" + ",".join(f"{m.name}{m.op}{json.dumps(m.value, ensure_ascii=False)}" for m in ordered) + "}"


def tree_lines(tree, matched: set[str] | None = None) -> list[str]:
    """The tree as `amtool config routes show` prints it (after its "Routing tree:" line);
    with `matched` (route ids), only the routes on the way to them, as `--tree` does."""
    root = tree if isinstance(tree, Route) else compile_tree(tree)
    lines = ["."]

    def keep(node) -> bool:
        return matched is None or any(n.id in matched for n in node.walk())

    def add(node, prefix: str, last: bool) -> None:
        slug = matchers_text(node)
        if node.config.continue_ and matched is None:
            slug += "  continue: true"
        if matched is None or node.id in matched:
            slug += f"  receiver: {node.config.receiver}"
        lines.append(f"{prefix}{'└── ' if last else '├── '}{slug}")
        children = [c for c in node.children if keep(c)]
        for i, child in enumerate(children):
            add(child, prefix + ("    " if last else "│   "), i == len(children) - 1)

    add(root, "", True)
    return lines
