"""The API calls that change something: acknowledge or resolve incidents, add or expire silences.

They call the very code the CLI calls (`alertd.incidents.actions.IncidentActions`,
`alertd.routing.silences.SilenceService`), so `alertd incidents ack 42` and
`POST /api/v1/incidents/42/ack` do the same thing. Every one needs the bearer token
(`Api.authorize`); the body is JSON.

    POST   /api/v1/incidents/{id}/ack       {"by": "alice", "comment": "looking"}
    POST   /api/v1/incidents/{id}/unack     {"by": "alice"}
    POST   /api/v1/incidents/{id}/resolve   {"by": "alice", "comment": "fixed by hand"}
    GET    /api/v1/silences                 ?all=1 includes expired ones
    POST   /api/v1/silences                 {"matchers": ["rule=x", "provider=~\"a|b\""], "duration": "2h",
                                             "comment": "...", "by": "alice", "expire_on_resolve": false}
    POST   /api/v1/silences/{id}/extend     {"duration": "2h"} (from now) or {"ends_at": <epoch>}, "by", "comment"
    DELETE /api/v1/silences/{id}            expire now (?by=alice names who)
"""

from __future__ import annotations

from ..durations import parse_duration
from ..incidents.actions import ActionError, IncidentActions
from ..routing.silences import SilenceError, SilenceService
from .api import incident_data
from .server import HttpError, Request, Response

_ACTIONS = {"ack": "acknowledge", "unack": "unacknowledge", "resolve": "resolve"}


def add_write_routes(app, state, api) -> None:
    """Register the writing endpoints (and the silence list) on `app`."""
    writes = Writes(state, api)
    for action in _ACTIONS:
        app.add("POST", f"/api/v1/incidents/{{ident}}/{action}", writes.incident_action(action))
    app.add("GET", "/api/v1/silences", writes.list_silences)
    app.add("POST", "/api/v1/silences", writes.add_silence)
    app.add("DELETE", "/api/v1/silences/{ident}", writes.expire_silence)
    app.add("POST", "/api/v1/silences/{ident}/extend", writes.extend_silence)


def _body(request: Request) -> dict:
    body = request.json()
    if not isinstance(body, dict):
        raise HttpError(400, "the request body must be a JSON object such as {\"by\": \"alice\"}")
    return body


def _text(body: dict, key: str, default: str = "") -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise HttpError(400, f'"{key}" must be a string, not {type(value).__name__}')
    return value


class Writes:
    """Handlers that act through the shared incident and silence services."""

    def __init__(self, state, api):
        self.state, self.api = state, api

    def _store(self):
        return self.state.open_store()

    def incident_action(self, action: str):
        def handler(request: Request) -> Response:
            self.api.authorize(request)
            body = _body(request)
            by = _text(body, "by") or "api"
            actions = IncidentActions(self._store(), self.state.clock)
            kwargs = {"by": by} if action == "unack" else {"by": by, "comment": _text(body, "comment")}
            try:
                result = getattr(actions, _ACTIONS[action])(request.params["ident"], **kwargs)
            except ActionError as exc:
                status = 404 if str(exc).startswith("no incident") else 409
                raise HttpError(status, str(exc)) from None
            self.state.log.info("incident_action", action=action, incident=result.incident.id, by=by,
                                 changed=result.changed, peer=request.peer)
            self.state.changed()
            return Response.json({"changed": result.changed, "message": result.message,
                                  "incident": incident_data(result.incident)})
        return handler

    def list_silences(self, request: Request) -> Response:
        service = SilenceService(self._store(), self.state.clock)
        include = request.query.get("all", "") in ("1", "true", "yes")
        now = self.state.clock.now()
        return Response.json({"silences": [s.as_dict(now) for s in service.list(include_expired=include)]})

    def add_silence(self, request: Request) -> Response:
        self.api.authorize(request)
        body = _body(request)
        matchers = body.get("matchers")
        if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
            raise HttpError(400, '"matchers" must be a list of strings such as ["rule=payment_success_drop"]')
        duration = ends_at = starts_at = None
        try:
            if body.get("duration") is not None:
                duration = parse_duration(body["duration"])
            if body.get("ends_at") is not None:
                ends_at = float(body["ends_at"])
            if body.get("starts_at") is not None:
                starts_at = float(body["starts_at"])
        except (TypeError, ValueError) as exc:
            raise HttpError(400, f"{exc}; write \"duration\": \"2h\" or \"ends_at\": <epoch seconds>") from None
        service = SilenceService(self._store(), self.state.clock)
        by = _text(body, "by") or "api"
        try:
            silence = service.add(matchers, duration=duration, ends_at=ends_at, starts_at=starts_at,
                                  author=by, comment=_text(body, "comment"),
                                  expire_on_resolve=bool(body.get("expire_on_resolve", False)))
        except SilenceError as exc:
            raise HttpError(400, str(exc)) from None
        self.state.log.info("silence_added", silence=silence.id, matchers=[str(m) for m in silence.matchers],
                             by=by, peer=request.peer)
        self.state.changed()
        now = self.state.clock.now()
        return Response.json({"silence": silence.as_dict(now),
                              "matches_open_incidents": service.open_incidents_matching(silence)}, 201)

    def expire_silence(self, request: Request) -> Response:
        self.api.authorize(request)
        service = SilenceService(self._store(), self.state.clock)
        by = request.query.get("by") or "api"
        try:
            silence = service.expire(request.params["ident"], by=by)
        except SilenceError as exc:
            status = 404 if str(exc).startswith("no silence") else 409
            raise HttpError(status, str(exc)) from None
        self.state.log.info("silence_expired", silence=silence.id, by=by, peer=request.peer)
        self.state.changed()
        return Response.json({"silence": silence.as_dict(self.state.clock.now())})

    def extend_silence(self, request: Request) -> Response:
        self.api.authorize(request)
        body = _body(request)
        now = self.state.clock.now()
        try:
            if body.get("duration") is not None:
                ends_at = now + parse_duration(body["duration"])
            elif body.get("ends_at") is not None:
                ends_at = float(body["ends_at"])
            else:
                raise ValueError("say when the silence ends")
        except (TypeError, ValueError) as exc:
            raise HttpError(400, f"{exc}; write \"duration\": \"2h\" (from now) or \"ends_at\": <epoch seconds>") from None
        by = _text(body, "by") or "api"
        service = SilenceService(self._store(), self.state.clock)
        try:
            silence = service.extend(request.params["ident"], ends_at=ends_at, by=by,
                                     comment=_text(body, "comment") or None)
        except SilenceError as exc:
            status = 404 if str(exc).startswith("no silence") else 409
            raise HttpError(status, str(exc)) from None
        self.state.log.info("silence_extended", silence=silence.id, by=by, ends_at=silence.ends_at, peer=request.peer)
        self.state.changed()
        return Response.json({"silence": silence.as_dict(now)})
