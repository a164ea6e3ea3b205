"""The front page: what needs attention now (open incidents, rules not judging, failing
sources, silences), each linking to its page."""

from __future__ import annotations

from ...render.annotations import render_annotations
from ...routing.silences import SilenceCache, SilenceService
from ..server import Request
from .common import Pages
from .incidents import load, parse_filters, select

SHOWN = 15


class OverviewPage:
    """Handler of /."""

    def __init__(self, pages: Pages):
        self.pages = pages
        self.state = pages.state

    def show(self, request: Request):
        session = self.pages.reader_guard(request)
        store = self.state.store()
        info = self.state.status()
        healths = self.state.rule_health()
        if store is None:
            return self.pages.page(request, "overview.html", title="Overview", nav="overview", session=session,
                                   starting=True, rows=[], open_count=0, healths=healths, attention=[],
                                   silences=[], now=self.state.clock.now())
        ids = select(store, parse_filters({}))
        incidents = load(store, ids[:SHOWN])
        active = SilenceCache(SilenceService(store, self.state.clock)).active(self.state.clock.now())
        rows = [{"incident": i, "silenced": SilenceCache.matching(active, i),
                 "summary": render_annotations(i).get("summary") or i.reason} for i in incidents]
        attention = [h for h in healths if h.state not in ("normal", "firing", "pending")]
        silences = SilenceService(store, self.state.clock).list()
        return self.pages.page(request, "overview.html", title="Overview", nav="overview", session=session,
                               starting=False, rows=rows, open_count=len(ids), healths=healths,
                               attention=attention, silences=silences, sources=info["sources"],
                               now=self.state.clock.now())
