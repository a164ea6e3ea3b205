"""The daemon's HTTP endpoints: health, readiness, /metrics, the JSON API and the status page.

    GET  /                              status page (HTML, read-only)
    GET  /healthz                       200 while the loop and its parts are alive, else 503
    GET  /readyz                        200 once config, store and a first tick are done
    GET  /metrics                       Prometheus exposition (OpenMetrics if asked for)
    GET  /api/v1/status                 uptime, last reload, sources, counts
    GET  /api/v1/incidents              ?state=open|all|pending|firing|resolved &rule= &limit=
    GET  /api/v1/incidents/{id}         by id or fingerprint, with its notifications
    POST /api/v1/reload                 reload the config as SIGHUP does (needs the token)
    POST /api/v1/incidents/{id}/ack     acknowledge (needs the token); also /unack, /resolve
    GET  /api/v1/silences               ?all=1 to include expired ones
    POST /api/v1/silences               create (needs the token)
    DELETE /api/v1/silences/{id}        expire (needs the token)

Reads need no token (bind to 127.0.0.1, or put a proxy in front). Calls that change
something need `Authorization: Bearer <http.token>`; a missing or wrong token is a 401 with
the reason, and with no token configured they answer 403: disabled.
"""

from __future__ import annotations

import hmac

from prometheus_client.exposition import choose_encoder

from .. import __version__
from ..incidents.actions import ActionError, IncidentActions
from ..config.shards import describe as describe_shard
from .server import HttpError, Request, Response, Router

INCIDENT_STATES = ("open", "all", "pending", "firing", "resolved")


def make_app(daemon) -> Router:
    """The router serving `daemon` (reads `daemon.config` per request, so reloads apply)."""
    from . import status_page
    from .writes import add_write_routes

    api = Api(daemon)
    app = Router()
    async def page(request):
        return Response.html(await status_page.render(daemon))

    app.add("GET", "/", page)
    app.add("GET", "/healthz", api.healthz)
    app.add("GET", "/readyz", api.readyz)
    app.add("GET", "/metrics", api.metrics)
    app.add("GET", "/api/v1/status", api.status)
    app.add("GET", "/api/v1/incidents", api.incidents)
    app.add("GET", "/api/v1/incidents/{ident}", api.incident)
    app.add("POST", "/api/v1/reload", api.reload)
    add_write_routes(app, daemon, api)
    return app


class Api:
    """Handlers of the read endpoints, and `authorize` for the writing ones."""

    def __init__(self, daemon):
        self.daemon = daemon

    # -- auth -----------------------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        """Raise 401 (missing/wrong bearer token) or 403 (writes disabled); return if allowed."""
        token = self.daemon.config.http.token
        if not token:
            raise HttpError(403, "changes through the API are disabled because no token is configured; "
                            "set http.token (or the ALERTD_API_TOKEN variable) and reload alertd")
        header = request.headers.get("authorization", "")
        scheme, _, given = header.strip().partition(" ")
        challenge = 'Bearer realm="alertd"'
        if not header.strip():
            self._denied(request, "missing")
            raise HttpError(401, "this call needs a token: send the header "
                            "'Authorization: Bearer <token>' with the http.token of alertd's config",
                            {"WWW-Authenticate": challenge})
        if scheme.lower() != "bearer" or not given.strip():
            self._denied(request, "not_bearer")
            raise HttpError(401, f"the Authorization header must be 'Bearer <token>', not '{scheme} ...'",
                            {"WWW-Authenticate": challenge})
        if not hmac.compare_digest(given.strip().encode(), str(token).encode()):
            self._denied(request, "wrong_token")
            raise HttpError(401, "the bearer token is not valid; use the http.token of alertd's config",
                            {"WWW-Authenticate": challenge + ', error="invalid_token"'})

    def _denied(self, request: Request, reason: str) -> None:
        self.daemon.log.warning("api_unauthorized", method=request.method, path=request.path,
                                peer=request.peer, reason=reason)

    # -- health -----------------------------------------------------------------------------------
    def healthz(self, request: Request) -> Response:
        problems = self.daemon.health_problems()
        if problems:
            return Response.json({"status": "unhealthy", "problems": problems}, 503)
        return Response.json({"status": "draining" if self.daemon.draining else "ok"})

    def readyz(self, request: Request) -> Response:
        checks = self.daemon.readiness()
        ready = all(checks.values())
        return Response.json({"ready": ready, "checks": checks}, 200 if ready else 503)

    def metrics(self, request: Request) -> Response:
        d = self.daemon
        if d.store is not None:
            d.metrics.outbox_depth.set(d.store.outbox.pending_count())
        encoder, content_type = choose_encoder(request.headers.get("accept"))
        return Response(200, encoder(d.metrics.registry), content_type)

    # -- reads ------------------------------------------------------------------------------------
    def status(self, request: Request) -> Response:
        return Response.json(status_data(self.daemon))

    def incidents(self, request: Request) -> Response:
        store = self._store()
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
        actions = IncidentActions(self._store(), self.daemon.clock)
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
            outcome = await self.daemon.request_reload()
        except RuntimeError as exc:
            raise HttpError(503, f"cannot reload now: {exc}") from None
        body = {"ok": outcome.ok, "at": outcome.at, "problems": outcome.problems,
                "changes": {k: v for k, v in outcome.changes.items() if v}}
        return Response.json(body, 200 if outcome.ok else 422)

    def _store(self):
        if self.daemon.store is None:
            raise HttpError(503, "the store is not open (alertd is starting or stopping)")
        return self.daemon.store


def _int_param(query: dict, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise HttpError(400, f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def incident_data(incident) -> dict:
    """An incident as the API shows it."""
    data = incident.as_dict()
    data.pop("ok_since", None)
    return data


def status_data(daemon) -> dict:
    """What the daemon is doing: for /api/v1/status and the status page."""
    now = daemon.clock.now()
    reload = daemon.last_reload
    sources = {}
    engine = daemon.engine
    for name, sc in daemon.config.sources.items():
        health = engine.source_health.get(name) if engine else None
        job = daemon.scheduler.get_job(f"source:{name}") if daemon.scheduler else None
        sources[name] = {
            "type": sc.type, "every": sc.every, "cron": sc.cron,
            "last_ok": health.last_ok if health else None,
            "consecutive_errors": health.consecutive_errors if health else 0,
            "last_error": health.last_error if health else None,
            "next_poll": job.next_run_time.timestamp() if job and job.next_run_time else None}
    states = [i.state for i in engine.tracker.open.values()] if engine else []
    return {
        "version": __version__, "config": daemon.config.path, "now": now,
        "started_at": daemon.started_at,
        "uptime": None if daemon.started_at is None else now - daemon.started_at,
        "ready": all(daemon.readiness().values()), "problems": daemon.health_problems(),
        "draining": daemon.draining,
        "last_reload": None if reload is None else {"ok": reload.ok, "at": reload.at,
                                                     "problems": reload.problems},
        "incidents": {"pending": states.count("pending"), "firing": states.count("firing")},
        "outbox_pending": daemon.store.outbox.pending_count() if daemon.store else None,
        "api_writes": bool(daemon.config.http.token),
        "sources": sources,
        "shard": describe_shard(daemon.config),
    }
