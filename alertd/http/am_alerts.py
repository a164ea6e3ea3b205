"""Alertmanager's alert endpoints, so Prometheus, amtool and Grafana can talk to alertd.

    POST /api/v2/alerts          post alerts (Prometheus' alertmanager_config, `amtool alert add`)
    POST /api/v1/alerts          the same for senders still on the v1 API
    GET  /api/v2/alerts          ?filter=<matcher>... &receiver=<regex> &active &silenced &inhibited
    GET  /api/v2/alerts/groups   the alert groups, as Alertmanager's dispatcher holds them

Posting needs the token (or basic auth), as every write does; reads do not. Posted alerts
become incidents (alertd/engine/intake.py). The lists show every firing incident, posted or
a rule's: labels as Alertmanager's webhook shows them, its state (`active` or `suppressed`,
with the silences and inhibiting alerts of this moment) and the receivers its routes reach.
"""

from __future__ import annotations

import asyncio

from .. import jsontext
from .. import regex as re2
from ..engine.intake import IntakeError
from ..render.annotations import render_annotations
from ..render.payloads import am_group_labels, am_labels
from ..render.view import fmt_iso
from ..routing.inhibit import Inhibitor
from ..routing.silences import SilenceService
from ..routing.tree import alert_labels, compile_tree
from .am_parse import AmError, parse_alerts
from .server import HttpError, Request, Response

ALERTS_MAX_BODY = 32 << 20  # 10,000 alerts with labels and annotations fit many times over


def am_json(data, status: int = 200) -> Response:
    """A compact JSON answer, as Alertmanager's API writes it."""
    import json
    return Response(status, json.dumps(data, separators=(",", ":")).encode() + b"\n", "application/json")


def query_list(request: Request, name: str) -> list[str]:
    """Every value of a repeated query parameter (`filter=a&filter=b`)."""
    from urllib.parse import parse_qs, urlsplit
    return parse_qs(urlsplit(request.target).query, keep_blank_values=True).get(name, [])


def query_bool(request: Request, name: str, default: bool = True) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false", "1", "0"):
        raise HttpError(400, f'{name} must be true or false, not "{value[:20]}"')
    return value.lower() in ("true", "1")


def filter_matchers(request: Request):
    """The `filter` parameters as matchers (amtool sends `{a="b"}` or `a="b"`)."""
    from ..routing.silences import parse_silence_matchers
    try:
        return parse_silence_matchers(query_list(request, "filter"))
    except ValueError as exc:
        raise HttpError(400, f"bad filter: {exc}") from None


def receiver_regex(request: Request):
    """The `receiver` parameter (a regex anchored at both ends, as Alertmanager's) on RE2: a
    caller without a token must not be able to send a pattern that backtracks for minutes."""
    receiver = request.query.get("receiver")
    if not receiver:
        return None
    try:
        return re2.compile(receiver)
    except ValueError as exc:
        why = getattr(exc, "why", str(exc))
        raise HttpError(400, f'the receiver regex "{receiver[:40]}" {why}') from None


class AlertsApi:
    """The handlers; `state` is the daemon's AppState (read per request)."""

    def __init__(self, state, authorize):
        self.state, self.authorize = state, authorize

    # -- posting ----------------------------------------------------------------------------
    async def _read(self, request: Request):
        if len(request.body) > 256 << 10:  # parse a big body beside the loop
            return await asyncio.to_thread(jsontext.loads, request.body)
        return jsontext.loads(request.body)

    async def _post(self, request: Request, v1: bool):
        self.authorize(request)
        if self.state.post_alerts is None:
            raise HttpError(503, "alertd is starting; post the alerts again in a moment")
        try:
            data = await self._read(request)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AmError(400, f"the body is not valid JSON ({exc}); post a JSON list of alerts") from None
        alerts, invalid = parse_alerts(data, v1=v1)
        try:
            accepted = await self.state.post_alerts(alerts)
        except IntakeError as exc:
            self.state.log.warning("alerts_posted", accepted=exc.accepted, refused=exc.total - exc.accepted,
                                   peer=request.peer)
            raise HttpError(500, f"{exc.accepted} of {exc.total} alerts were accepted, the rest were not "
                                 "because the store failed (see the daemon's log); post them again") from None
        except RuntimeError as exc:
            raise HttpError(503, f"{exc}; post the alerts again in a moment") from None
        self.state.log.info("alerts_posted", accepted=accepted, refused=len(invalid), peer=request.peer)
        if invalid:
            more = f" ({len(invalid) - 1} more refused)" if len(invalid) > 1 else ""
            raise AmError(400, f"{invalid[0]}{more}; the other {accepted} alerts were accepted", plain=True)
        return accepted

    async def post_v2(self, request: Request) -> Response:
        try:
            await self._post(request, v1=False)
        except AmError as exc:  # Alertmanager: schema errors are {code, message}, validation a string
            body = exc.message if exc.plain else {"code": exc.status, "message": exc.message}
            return am_json(body, exc.status)
        return Response(200, b"", "application/json")

    async def post_v1(self, request: Request) -> Response:
        try:
            await self._post(request, v1=True)
        except AmError as exc:
            return am_json({"status": "error", "errorType": "bad_data", "error": exc.message}, 400)
        return am_json({"status": "success"})

    # -- reading -----------------------------------------------------------------------------
    def _context(self):
        store = self.state.open_store()
        config = self.state.config()
        now = self.state.clock.now()
        silences = SilenceService(store, self.state.clock).active()
        inhibitor = Inhibitor(config.inhibit_rules, store.incidents.firing()) if config.inhibit_rules else None
        tree = compile_tree(config.routes) if config.routes is not None else None
        return store, config, now, silences, inhibitor, tree

    def gettable(self, incident, now, silences, inhibitor, tree, resolve_timeout: float) -> dict:
        """One incident as Alertmanager's `gettableAlert`."""
        labels = alert_labels(incident)
        silenced = [s.id for s in silences if s.matches(labels)]
        inhibited = inhibitor.inhibited_labels(labels, incident.fingerprint) if inhibitor else []
        receivers = []
        for node in tree.match(labels) if tree else []:
            if node.config.receiver not in receivers:
                receivers.append(node.config.receiver)
        posted = incident.cause == "posted"
        annotations = incident.annotations if posted else render_annotations(incident)
        ends = incident.ends_at if posted and incident.ends_at is not None else now + resolve_timeout
        updated = incident.last_anomalous_at or incident.fired_at or incident.started_at
        return {
            "annotations": dict(sorted(annotations.items())), "endsAt": fmt_iso(ends),
            "fingerprint": incident.fingerprint, "receivers": [{"name": r} for r in receivers],
            "startsAt": fmt_iso(incident.started_at),
            "status": {"inhibitedBy": inhibited, "silencedBy": silenced,
                       "state": "suppressed" if silenced or inhibited else "active"},
            "updatedAt": fmt_iso(min(updated, now)),
            "generatorURL": incident.generator_url or incident.annotations.get("dashboard_url") or "",
            "labels": am_labels(incident),
        }

    def _wanted(self, request: Request):
        matchers = filter_matchers(request)
        receiver_re = receiver_regex(request)
        show = {k: query_bool(request, k) for k in ("active", "silenced", "inhibited", "unprocessed")}

        def wanted(alert: dict) -> bool:
            status = alert["status"]
            if receiver_re and not any(receiver_re.fullmatch(r["name"]) for r in alert["receivers"]):
                return False
            if not all(m.matches(alert["labels"]) for m in matchers):
                return False
            if not show["active"] and status["state"] == "active":
                return False
            if not show["silenced"] and status["silencedBy"]:
                return False
            return show["inhibited"] or not status["inhibitedBy"]
        return wanted

    def get_alerts(self, request: Request) -> Response:
        wanted = self._wanted(request)
        store, config, now, silences, inhibitor, tree = self._context()
        timeout = config.posted_alerts.resolve_timeout
        out = [a for a in (self.gettable(i, now, silences, inhibitor, tree, timeout)
                           for i in store.incidents.open() if i.state == "firing") if wanted(a)]
        out.sort(key=lambda a: a["fingerprint"])
        return am_json(out)

    def get_groups(self, request: Request) -> Response:
        wanted = self._wanted(request)
        receiver = receiver_regex(request)
        store, config, now, silences, inhibitor, tree = self._context()
        nodes = {node.id: node for node in tree.walk()} if tree else {}
        groups = store.groups.all()
        members = store.groups.members([g.key for g in groups])
        incidents = store.incidents.by_ids({m.incident_id for ms in members.values() for m in ms})
        timeout = config.posted_alerts.resolve_timeout
        out = []
        for g in groups:
            node = nodes.get(g.route_id)
            name = node.config.receiver if node is not None else g.receiver
            if receiver and not receiver.fullmatch(name):
                continue
            alerts = []
            for m in members.get(g.key, []):
                inc = incidents.get(m.incident_id)
                if inc is not None and inc.state == "firing":
                    alert = self.gettable(inc, now, silences, inhibitor, tree, timeout)
                    if wanted(alert):
                        alerts.append(alert)
            if alerts:
                alerts.sort(key=lambda a: sorted(a["labels"].items()))
                out.append({"alerts": alerts, "labels": am_group_labels(g.labels), "receiver": {"name": name}})
        out.sort(key=lambda g: (len(g["labels"]), sorted(g["labels"].items()), g["receiver"]["name"]))
        return am_json(out)
