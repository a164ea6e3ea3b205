"""The rules pages: every rule with its health (alertd/engine/rule_health.py), and one rule with
its settings and its series, each with a state and (for a page of them) a chart with axes."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from ...engine.rule_health import SERIES_STATES
from ..charts import chart
from ..server import HttpError, Request
from .common import Pages, read_recent

SERIES_PAGE = 50  # series listed per page
CHARTS = 12  # of which drawn
POINTS = 90  # points per chart (a longer view: the incident page, 240)


class RulePages:
    """Handlers of /rules and /rules/{name}."""

    def __init__(self, pages: Pages):
        self.pages = pages
        self.state = pages.state

    def list(self, request: Request):
        session = self.pages.reader_guard(request)
        rules = {r.name: r for r in self.state.config().rules}
        return self.pages.page(request, "rules.html", title="Rules", nav="rules", session=session,
                               healths=self.state.rule_health(), rules=rules, now=self.state.clock.now())

    async def show(self, request: Request):
        session = self.pages.reader_guard(request)
        name = request.params["name"]
        rule = next((r for r in self.state.config().rules if r.name == name), None)
        wanted = request.query.get("state", "")
        if wanted and wanted not in SERIES_STATES:
            wanted = ""
        page = int(request.query["page"]) if request.query.get("page", "").isdigit() else 1
        page = max(page, 1)
        found = self.state.rule_series(name, state=wanted or None, offset=(page - 1) * SERIES_PAGE, limit=SERIES_PAGE)
        if rule is None or found is None:
            raise HttpError(404, f'there is no rule "{name}" running here; see the rules page')
        health, total, series = found
        store = self.pages.store()
        drawn = series[:CHARTS]
        history = await read_recent(store, [s.key for s in drawn], POINTS, source=rule.source)
        spans = {fp: [(a, b, "firing" if state == "resolved" else state) for a, b, state in items]
                 for fp, items in store.incidents.spans_of([s.fingerprint for s in drawn]).items()}
        charts = {}
        for s in drawn:
            ts, values, _ = history.get(s.key, ((), (), 0))
            detections, band = self.state.chart_marks(name, s.key)
            ahead = self.state.forecast(name, s.key, 1) or [None]  # a forecasting rule's path, band, crossing
            charts[s.key] = chart(ts, values, detections=detections, band=band, spans=spans.get(s.fingerprint, ()),
                                  width=400, height=170, label=s.key, forecast=ahead[0])
        params = {f.name: getattr(rule.detector.params, f.name) for f in dataclasses.fields(rule.detector.params)} \
            if dataclasses.is_dataclass(rule.detector.params) else {}
        pages = max(1, (total + SERIES_PAGE - 1) // SERIES_PAGE)

        def link(**changes):
            query = {"state": wanted, "page": page, **changes}
            return "?" + urlencode({k: v for k, v in query.items() if v not in ("", None, 1)})

        return self.pages.page(request, "rule.html", title=f"Rule {name}", nav="rules", session=session, rule=rule,
                               health=health, series=series, total=total, charts=charts, wanted=wanted, page=page,
                               pages=pages, link=link, params=params, states=SERIES_STATES,
                               now=self.state.clock.now())
