"""The read endpoints: health, readiness, /metrics and the JSON API (see alertd/http/app.py).

    GET  /healthz                       200 while the loop and its parts are alive and work commits,
                                        else 503 with the problems, one sentence each
    GET  /readyz                        200 once config, store and a first tick are done, while healthy
    GET  /metrics                       Prometheus exposition (OpenMetrics if asked for)
    GET  /api/v1/status                 uptime, last reload, sources, counts
    GET  /api/v1/rules                  every rule's health: state, warm-up, last evaluation, errors
    GET  /api/v1/incidents              ?state=open|all|pending|firing|resolved &rule= &limit=
    GET  /api/v1/incidents/{id}         by id or fingerprint, with its notifications
    POST /api/v1/reload                 reload the config as SIGHUP does (needs the token)
    POST /api/v1/incidents/{id}/ack     acknowledge (needs the token); also /unack, /resolve
    GET  /api/v1/silences               ?all=1 to include expired ones
    POST /api/v1/silences               create (needs the token)
    DELETE /api/v1/silences/{id}        expire (needs the token)

Reads need no token (bind to 127.0.0.1, or put a proxy in front). Calls that change
something need `Authorization: Bearer <http.token>` (or basic auth when `http.basic_auth` is
set); missing or wrong credentials are a 401 with the reason, and with neither configured
they answer 403: disabled.
"""

from __future__ import annotations

import base64
import hmac

from prometheus_client.exposition import choose_encoder

from ..incidents.actions import ActionError, IncidentActions
from ..logthrottle import LogThrottle
from ..render.annotations import render_annotations
from .server import HttpError, Request, Response

INCIDENT_STATES = ("open", "all", "pending", "firing", "resolved")


class Api:
    """Handlers of the read endpoints, and `authorize` for the writing ones."""

    def __init__(self, state):
        self.state = state
        self._denials = LogThrottle(60.0)  # a flood of bad tokens is not a flood of log lines

    # -- auth -----------------------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        """Raise 401 (missing/wrong credentials) or 403 (writes disabled); return if allowed.

        The bearer token (`http.token`) is always accepted; basic auth when `http.basic_auth`
        is set (Prometheus' and amtool's `basic_auth`)."""
        hc = self.state.config().http
        token, basic = hc.token, getattr(hc, "basic_auth", None)
        if not token and basic is None:
            raise HttpError(403, "changes through the API are disabled because no token is configured; "
                            "set http.token (or the ALERTD_API_TOKEN variable) and reload alertd")
        header = request.headers.get("authorization", "")
        scheme, _, given = header.strip().partition(" ")
        challenge = 'Basic realm="alertd"' if basic is not None and not token else 'Bearer realm="alertd"'
        if not header.strip():
            self._denied(request, "missing")
            how = ("a token: send the header 'Authorization: Bearer <token>' with the http.token of "
                   "alertd's config" if token else
                   "credentials: send basic auth with the username and password of http.basic_auth")
            raise HttpError(401, f"this call needs {how}", {"WWW-Authenticate": challenge})
        if scheme.lower() == "basic" and basic is not None:
            if _basic_ok(given.strip(), basic):
                return
            self._denied(request, "wrong_password")
            raise HttpError(401, "the basic auth user or password is not valid; use those of http.basic_auth",
                            {"WWW-Authenticate": challenge})
        if scheme.lower() != "bearer" or not given.strip() or not token:
            self._denied(request, "not_bearer")
            accepted = "'Bearer <token>'" + (" or 'Basic <user:password>'" if basic is not None else "")
            raise HttpError(401, f"the Authorization header must be {accepted}, not '{scheme} ...'",
                            {"WWW-Authenticate": challenge})
        if not hmac.compare_digest(given.strip().encode(), str(token).encode()):
            self._denied(request, "wrong_token")
            raise HttpError(401, "the bearer token is not valid; use the http.token of alertd's config",
                            {"WWW-Authenticate": challenge + ', error="invalid_token"'})

    def _denied(self, request: Request, reason: str) -> None:
        held = self._denials.allow(reason)
        if held is None:
            return
        self.state.log.warning("api_unauthorized", method=request.method, path=request.path, similar_before=held,
                                peer=request.peer, reason=reason)

    # -- health -----------------------------------------------------------------------------------
    def healthz(self, request: Request) -> Response:
        problems = self.state.health()
        if problems:
            return Response.json({"status": "unhealthy", "problems": problems}, 503)
        return Response.json({"status": "draining" if self.state.draining() else "ok"})

    def readyz(self, request: Request) -> Response:
        checks = self.state.readiness()
        ready = all(checks.values())
        body = {"ready": ready, "checks": checks}
        if not checks.get("healthy", True):
            body["problems"] = self.state.health()
        return Response.json(body, 200 if ready else 503)

    def metrics(self, request: Request) -> Response:
        store, metrics = self.state.store(), self.state.metrics
        if store is not None:
            metrics.outbox_depth.set(store.outbox.pending_count())
        encoder, content_type = choose_encoder(request.headers.get("accept"))
        return Response(200, encoder(metrics.registry), content_type)

    # -- reads ------------------------------------------------------------------------------------
    def status(self, request: Request) -> Response:
        return Response.json(self.state.status())

    def rules(self, request: Request) -> Response:
        """Every rule's health (alertd/engine/rule_health.py): state, why, warm-up, last
        evaluation and error, training, series by state, open incidents."""
        return Response.json({"rules": [h.as_dict() for h in self.state.rule_health()]})

    def incidents(self, request: Request) -> Response:
        store = self.state.open_store()
        q = request.query
        state = q.get("state", "open")
        if state not in INCIDENT_STATES:
            raise HttpError(400, f'state "{state}" is not one of ' + ", ".join(INCIDENT_STATES))
        limit = _int_param(q, "limit", 100, 1, 10_000)
        found = store.incidents.list(include_closed=state != "open", limit=limit,
                                     state=state if state not in ("open", "all") else None,
                                     rule=q.get("rule") or None)
        return Response.json({"incidents": [incident_data(i) for i in found]})

    def incident(self, request: Request) -> Response:
        """One incident as `alertd incidents show --json` prints it: groups, history, notices."""
        actions = IncidentActions(self.state.open_store(), self.state.clock)
        try:
            incident = actions.find(request.params["ident"])
        except ActionError as exc:
            raise HttpError(404, str(exc)) from None
        detail = actions.detail(incident)
        detail["incident"] = incident_data(incident)
        return Response.json(detail)

    # -- writes -------------------------------------------------------------------------------------
    async def reload(self, request: Request) -> Response:
        """Reload the config file; 200 with what changed, or 422 with every problem."""
        self.authorize(request)
        try:
            outcome = await self.state.reload()
        except RuntimeError as exc:
            raise HttpError(503, f"cannot reload now: {exc}") from None
        body = {"ok": outcome.ok, "at": outcome.at, "problems": outcome.problems,
                "changes": {k: v for k, v in outcome.changes.items() if v}}
        return Response.json(body, 200 if outcome.ok else 422)


def _basic_ok(given: str, basic) -> bool:
    """Whether `given` (base64 of user:password) names the configured user and password."""
    try:
        user, _, password = base64.b64decode(given, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    want_user, want_password = basic
    return (hmac.compare_digest(user.encode(), want_user.encode())
            & hmac.compare_digest(password.encode(), str(want_password).encode()))


def _int_param(query: dict, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise HttpError(400, f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def incident_data(incident) -> dict:
    """An incident as the API shows it, its annotations rendered as notices show them."""
    data = incident.as_dict()
    data.pop("ok_since", None)
    data["annotations"] = render_annotations(incident)
    return data
