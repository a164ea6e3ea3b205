"""The daemon's HTTP app: every route, and the handlers behind them.

    GET  /healthz /readyz /metrics      health, readiness, Prometheus exposition
    GET  /api/v1/...                    the JSON API (alertd/http/api.py)
    POST|DELETE /api/v1/...             actions that need the token (alertd/http/writes.py)
    GET  /api/v1/rules/{name}/forecast  what a forecast rule expects next (alertd/http/forecasts.py)
    /api/v2/...  POST /api/v1/alerts    Alertmanager's API: alerts, groups, silences, status,
                                        receivers (alertd/http/am_alerts.py, am_silences.py, am_status.py)
    /  /incidents  /silences  /rules  /routes  /login ...
                                        the pages people use in a browser (alertd/http/web.py)

The app gets the daemon's `AppState` (alertd/http/state.py), never the daemon itself.
"""

from __future__ import annotations

from .am_alerts import ALERTS_MAX_BODY, AlertsApi
from .am_silences import SilencesApi
from .am_status import StatusApi
from .api import Api
from .forecasts import add_forecast_routes
from .server import Routes
from .web import add_page_routes
from .writes import add_write_routes


def make_app(state) -> Routes:
    """The routes serving `state` (read per request, so reloads apply)."""
    api = Api(state)
    app = Routes()
    app.add("GET", "/healthz", api.healthz)
    app.add("GET", "/readyz", api.readyz)
    app.add("GET", "/metrics", api.metrics)
    app.add("GET", "/api/v1/status", api.status)
    app.add("GET", "/api/v1/rules", api.rules)
    app.add("GET", "/api/v1/incidents", api.incidents)
    app.add("GET", "/api/v1/incidents/{ident}", api.incident)
    app.add("POST", "/api/v1/reload", api.reload)
    add_write_routes(app, state, api)
    add_alertmanager_routes(app, state, api)
    add_page_routes(app, state)
    add_forecast_routes(app, state)
    return app


def add_alertmanager_routes(app, state, api) -> None:
    """Alertmanager's API v2 (and v1's alert intake) for Prometheus, amtool and Grafana."""
    alerts, silences, status = AlertsApi(state, api.authorize), SilencesApi(state, api.authorize), StatusApi(state)
    app.add("POST", "/api/v2/alerts", alerts.post_v2)
    app.add("POST", "/api/v1/alerts", alerts.post_v1)
    app.add("GET", "/api/v2/alerts", alerts.get_alerts)
    app.add("GET", "/api/v2/alerts/groups", alerts.get_groups)
    app.add("GET", "/api/v2/silences", silences.list)
    app.add("POST", "/api/v2/silences", silences.post)
    app.add("GET", "/api/v2/silence/{ident}", silences.get)
    app.add("DELETE", "/api/v2/silence/{ident}", silences.delete)
    app.add("GET", "/api/v2/status", status.status)
    app.add("GET", "/api/v2/receivers", status.receivers)
    app.body_limits = {"/api/v2/alerts": ALERTS_MAX_BODY, "/api/v1/alerts": ALERTS_MAX_BODY}
