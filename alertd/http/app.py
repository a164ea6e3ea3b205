"""The daemon's HTTP app: every route, and the handlers behind them.

    GET  /                              status page (HTML, read-only)
    GET  /healthz /readyz /metrics      health, readiness, Prometheus exposition
    GET  /api/v1/...                    the JSON API (alertd/http/api.py)
    POST|DELETE /api/v1/...             actions that need the token (alertd/http/writes.py)

The app gets the daemon's `AppState` (alertd/http/state.py), never the daemon itself.
"""

from __future__ import annotations

from . import status_page
from .api import Api
from .server import Response, Routes
from .writes import add_write_routes


def make_app(state) -> Routes:
    """The routes serving `state` (read per request, so reloads apply)."""
    api = Api(state)
    app = Routes()

    async def page(request):
        return Response.html(await status_page.render(state))

    app.add("GET", "/", page)
    app.add("GET", "/healthz", api.healthz)
    app.add("GET", "/readyz", api.readyz)
    app.add("GET", "/metrics", api.metrics)
    app.add("GET", "/api/v1/status", api.status)
    app.add("GET", "/api/v1/incidents", api.incidents)
    app.add("GET", "/api/v1/incidents/{ident}", api.incident)
    app.add("POST", "/api/v1/reload", api.reload)
    add_write_routes(app, state, api)
    return app
