"""The forecast of a rule's series as data, for scripts and pages (issue 19's charts draw it).

    GET /api/v1/rules/{name}/forecast             every series of the rule (?limit=, default 100)
    GET /api/v1/rules/{name}/forecast?series=KEY  one series

Each forecast is `Detector.forecast(key)`: the model, from when (`from`, the latest point),
its times `ts`, central path `mean`, interval `lower`/`upper`, and for an early warning its
`line`, side (`below`), horizon (`within`), `confidence` and `crossing_at` (null: no crossing
expected within the horizon). A rule whose detector does not forecast answers an empty list.
"""

from __future__ import annotations

from .server import HttpError, Request, Response


def add_forecast_routes(app, state) -> None:
    """Register the forecast endpoint on `app`."""

    def forecast(request: Request) -> Response:
        name = request.params["name"]
        q = request.query
        limit = q.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
            raise HttpError(400, f"limit must be a whole number from 1 to 10000, not {limit!r}")
        views = state.forecast(name, q.get("series") or None, int(limit))
        if views is None:
            raise HttpError(404, f'no running rule is called "{name}"')
        if q.get("series") and not views:
            raise HttpError(404, f'rule "{name}" has no forecast of {q["series"]} (not a series of it, '
                            "not forecast yet, or its detector does not forecast)")
        return Response.json({"rule": name, "forecasts": views})

    app.add("GET", "/api/v1/rules/{name}/forecast", forecast)
