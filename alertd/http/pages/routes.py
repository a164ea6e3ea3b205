"""The routes page: the route tree as Alertmanager's UI draws it, and a form "these labels ->
which receivers, grouped how", answered by `alertd.routing.route_match` (the same answer as
`alertd routes test` and `amtool config routes test`)."""

from __future__ import annotations

from ...routing.route_match import matchers_text, matching_routes, parse_labels
from ...routing.tree import compile_tree
from ..server import Request
from .common import Pages


def _flatten(node, depth=0):
    yield depth, node
    for child in node.children:
        yield from _flatten(child, depth + 1)


class RoutePages:
    """Handler of /routes."""

    def __init__(self, pages: Pages):
        self.pages = pages
        self.state = pages.state

    def show(self, request: Request):
        session = self.pages.reader_guard(request)
        config = self.state.config()
        tree = compile_tree(config.routes) if config.routes is not None else None
        text = request.query.get("labels", "").strip()
        found, error, labels = None, "", {}
        if text and tree is not None:
            try:
                labels = parse_labels(text.replace(",", " ").split())
                found = matching_routes(tree, labels)
            except ValueError as exc:
                error = str(exc)
        matched = {m.route.id: m for m in found or ()}
        on_path = {r.id for m in found or () for r in m.path}
        nodes = list(_flatten(tree)) if tree is not None else []
        return self.pages.page(request, "routes.html", title="Routes", nav="routes", session=session, nodes=nodes,
                               matched=matched, on_path=on_path, found=found, text=text, error=error,
                               matchers_text=matchers_text, inhibit_rules=config.inhibit_rules,
                               status=400 if error else 200)
