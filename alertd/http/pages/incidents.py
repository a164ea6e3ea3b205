"""The incidents list (filters by state, rule, severity and label matchers) and the incident
page (history, chart, notifications and their attempts, acknowledgement, silences and
inhibitions), with acknowledge / unacknowledge / resolve forms.

The forms call `alertd.incidents.actions.IncidentActions`, as `alertd incidents ack` and the
API do, with the logged-in person as the actor, then `state.changed()`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ...incidents.actions import ActionError, IncidentActions
from ...render.annotations import render_annotations
from ...routing.silences import SilenceCache, SilenceService, parse_silence_matchers
from ...routing.tree import alert_labels, routing_labels
from ..charts import chart
from ..forms import parse_form
from ..page_auth import clean_name
from ..server import HttpError, Request
from .common import PAGE_SIZE, Pages, read_recent, redirect

STATES = ("open", "firing", "pending", "resolved", "all")
SEVERITY_ORDER = {"critical": 0, "page": 0, "error": 1, "warning": 2, "info": 3}
CLOSED_LIMIT = 2000  # resolved incidents searched by a filter (newest first)
CHART_POINTS = 240  # points of the series drawn around an incident (read in a thread)
ACTIONS = {"ack": "acknowledge", "unack": "unacknowledge", "resolve": "resolve"}
DONE = {"ack": "Acknowledged: repeat notices stop; the resolve is still sent.",
        "unack": "No longer acknowledged: repeat notices resume.",
        "resolve": "Resolved by hand: its groups send the resolved notice.",
        "silenced": "Silence added.", "expired": "Silence expired.", "extended": "Silence extended."}


def parse_filters(query: dict) -> dict:
    """The list's filters from the query string; bad ones become an error sentence."""
    f = {"state": query.get("state", "open"), "rule": query.get("rule", ""),
         "severity": query.get("severity", ""), "matchers": query.get("matchers", "").strip(), "error": ""}
    if f["state"] not in STATES:
        f["error"], f["state"] = f'state "{f["state"]}" is not one of {", ".join(STATES)}', "open"
    f["parsed"] = ()
    if f["matchers"]:
        try:
            f["parsed"] = parse_silence_matchers([f["matchers"]])
        except ValueError as exc:
            f["error"] = f"the label matchers are not valid: {exc}"
    return f


def select(store, f: dict) -> list[int]:
    """The ids of the incidents the filters pick, in the order on-call reads them (filtered on
    a light summary of each; only the shown page is loaded in full)."""
    if f["state"] in ("open", "firing", "pending"):
        found = [r for r in store.incidents.summaries(rule=f["rule"] or None)
                 if f["state"] == "open" or r[4] == f["state"]]
        found.sort(key=lambda r: (r[4] != "firing", SEVERITY_ORDER.get(r[3], 9), -(r[5] or 0)))
    else:
        found = store.incidents.summaries(open_only=False, state="resolved" if f["state"] == "resolved" else None,
                                          rule=f["rule"] or None, limit=CLOSED_LIMIT)
    out = []
    for incident_id, rule, labels, severity, _, _ in found:
        if f["severity"] and severity != f["severity"]:
            continue
        if f["parsed"]:
            full = routing_labels(labels, rule, severity)
            if not all(m.matches(full) for m in f["parsed"]):
                continue
        out.append(incident_id)
    return out


def load(store, ids: list[int]) -> list:
    """The incidents of `ids`, in that order."""
    found = store.incidents.by_ids(ids)
    return [found[i] for i in ids if i in found]


class IncidentPages:
    """Handlers of /incidents, /incidents/{id} and its forms."""

    def __init__(self, pages: Pages):
        self.pages = pages
        self.state = pages.state

    def list(self, request: Request):
        session = self.pages.reader_guard(request)
        store = self.pages.store()
        f = parse_filters(request.query)
        found = select(store, f)
        page = max(1, int(request.query.get("page", "1"))) if request.query.get("page", "1").isdigit() else 1
        shown = load(store, found[(page - 1) * PAGE_SIZE:page * PAGE_SIZE])
        now = self.state.clock.now()
        active = SilenceCache(SilenceService(store, self.state.clock)).active(now)
        rows = [{"incident": i, "silenced": SilenceCache.matching(active, i) if i.state != "resolved" else [],
                 "summary": render_annotations(i).get("summary") or i.reason} for i in shown]
        config = self.state.config()
        rules = sorted({r.name for r in config.rules} | {i.rule for i in shown})
        severities = sorted({r.severity for r in config.rules} | {i.severity for i in shown},
                            key=lambda s: (SEVERITY_ORDER.get(s, 9), s))
        query = {k: f[k] for k in ("state", "rule", "severity", "matchers") if f[k]}
        pages = (len(found) + PAGE_SIZE - 1) // PAGE_SIZE
        return self.pages.page(request, "incidents.html", title="Incidents", nav="incidents", session=session,
                               f=f, rows=rows, total=len(found), page=page, pages=pages, rules=rules,
                               severities=severities, states=STATES, now=now,
                               page_link=lambda n: "?" + urlencode({**query, "page": n}),
                               status=400 if f["error"] else 200)

    async def show(self, request: Request, *, error: str = "", status: int = 200):
        session = self.pages.reader_guard(request)
        store = self.pages.store()
        actions = IncidentActions(store, self.state.clock)
        try:
            incident = actions.find(request.params["ident"])
        except ActionError as exc:
            raise HttpError(404, str(exc)) from None
        detail = actions.detail(incident)
        now = self.state.clock.now()
        service = SilenceService(store, self.state.clock)
        labels = alert_labels(incident)
        silences = [s for s in service.list(include_expired=False) if s.matches(labels)]
        for ident in incident.silenced_by:
            if ident not in {s.id for s in silences}:
                try:
                    silences.append(service.get(ident))
                except ValueError:
                    continue
        inhibitors = [store.incidents.get(fp) for fp in incident.inhibited_by]
        notices = detail["notifications"]
        attempts = {r["id"]: store.ledger.of(r["id"]) for r in notices[:50]}
        chart_svg, series_key = await self._chart(store, incident, now)
        message = DONE.get(request.query.get("done", ""), "")
        return self.pages.page(
            request, "incident.html", title=f"#{incident.id} {incident.rule}", nav="incidents", session=session,
            incident=incident, annotations=render_annotations(incident), history=detail["history"],
            groups=detail["groups"], notices=notices, attempts=attempts, silences=silences,
            inhibitors=[i for i in inhibitors if i is not None], chart=chart_svg, series_key=series_key,
            now=now, message=message, error=error, status=status)

    async def _chart(self, store, incident, now: float):
        """The series around the incident: from before it started to its end (or now)."""
        found = self.state.series_of(incident.rule, incident.fingerprint)
        if found is None:
            return "", None
        key, _ = found
        # times of the data (a replay's or simulator's differ from the clock): an open
        # incident is drawn up to the series' newest point, a resolved one a while past its end
        lasted = max((incident.resolved_at or incident.last_anomalous_at or incident.started_at)
                     - incident.started_at, 60.0)
        before = None if incident.resolved_at is None else incident.resolved_at + max(lasted * 0.5, 300.0)
        rule = next((r for r in self.state.config().rules if r.name == incident.rule), None)
        history = await read_recent(store, [key], CHART_POINTS, before=before,
                                    source=rule.source if rule is not None else None)
        ts, values, _ = history.get(key, ((), (), 0))
        start = incident.started_at - max(lasted, 600.0)
        end = float(ts[-1]) if len(ts) else (before or now)
        keep = [(t, v) for t, v in zip(ts, values) if t >= start]
        detections, band = self.state.chart_marks(incident.rule, key)
        spans = [(incident.started_at, incident.resolved_at, incident.state if incident.state != "resolved"
                  else "firing")]
        # an open early warning shows what it expects: the path, its band and the crossing
        ahead = (self.state.forecast(incident.rule, key, 1) or [None]) if incident.resolved_at is None else [None]
        # drawn twice, for a wide screen and for a phone (CSS shows one): an SVG's text scales with it
        svgs = [chart([t for t, _ in keep], [v for _, v in keep], detections=detections, spans=spans, band=band,
                      expected=(incident.expected_low, incident.expected_high),
                      start=min([start] + [t for t, _ in keep[:1]]), end=end, width=width, height=height, label=key,
                      forecast=ahead[0])
                for width, height in ((640, 220), (360, 200))]
        return f'<div class="wide-only">{svgs[0]}</div><div class="narrow-only">{svgs[1]}</div>', key

    def act(self, action: str):
        async def handler(request: Request):
            form = parse_form(request)
            session = self.pages.auth.require(request, form)
            store = self.pages.store()
            ident = request.params["ident"]
            actions = IncidentActions(store, self.state.clock)
            try:
                name = clean_name(session.user)
                comment = form.get("comment")[:2000]
                kwargs = {"by": name} if action == "unack" else {"by": name, "comment": comment}
                result = getattr(actions, ACTIONS[action])(ident, **kwargs)
            except (ActionError, ValueError) as exc:
                if str(exc).startswith("no incident"):
                    raise HttpError(404, str(exc)) from None
                return await self.show(request, error=str(exc), status=409)
            self.state.log.info("incident_action", action=action, incident=result.incident.id, by=name,
                                changed=result.changed, peer=request.peer, via="page")
            self.state.changed()
            return redirect(f"{self.pages.base}/incidents/{result.incident.id}?done={action}")
        return handler
