"""The pages people use in a browser: their routes, and HTML answers for their errors.

    GET  /                         what needs attention now
    GET  /incidents                filter by state, rule, severity, label matchers
    GET  /incidents/{id}           history, chart, notifications, silences, inhibitions
    POST /incidents/{id}/ack|unack|resolve
    GET  /silences  /silences/new  /silences/preview    (POST /silences/new: the preview, no script)
    POST /silences  /silences/{id}/extend  /silences/{id}/expire
    GET  /rules  /rules/{name}     every rule's health; one rule's series with charts
    GET  /routes                   the route tree, and "these labels -> which receivers"
    GET|POST /login   POST /logout
    GET  /static/{file}            the stylesheet and the silence preview's script

Every POST that changes something is a form that needs a login and its CSRF token (alertd/http/page_auth.py): without
them it answers 403 and changes nothing. Pages are server-rendered (Jinja2, autoescaped) and
work without JavaScript; everything is served by alertd itself.
"""

from __future__ import annotations

import inspect

from .page_auth import PageAuth
from .pages.common import Pages, Redirect, redirect
from .pages.incidents import IncidentPages
from .pages.login import LoginPages
from .pages.overview import OverviewPage
from .pages.routes import RoutePages
from .pages.rules import RulePages
from .pages.silences import SilencePages
from .server import HttpError, Request, Response
from .templating import STATIC

STATIC_FILES = {"alertd.css": "text/css; charset=utf-8", "silence.js": "text/javascript; charset=utf-8"}


def add_page_routes(app, state) -> None:
    """Register the pages on `app` (a Routes)."""
    pages = Pages(state, PageAuth(state))
    incidents, silences = IncidentPages(pages), SilencePages(pages)
    rules, routes, login, overview = RulePages(pages), RoutePages(pages), LoginPages(pages), OverviewPage(pages)

    def add(method: str, path: str, handler) -> None:
        app.add(method, path, _html_errors(pages, handler))

    add("GET", "/", overview.show)
    add("GET", "/incidents", incidents.list)
    add("GET", "/incidents/{ident}", incidents.show)
    for action in ("ack", "unack", "resolve"):
        add("POST", f"/incidents/{{ident}}/{action}", incidents.act(action))
    add("GET", "/silences", silences.list)
    add("POST", "/silences", silences.create)
    add("GET", "/silences/new", silences.new)
    add("POST", "/silences/new", silences.preview_posted)
    add("GET", "/silences/preview", silences.preview_fragment)
    add("POST", "/silences/{ident}/expire", silences.change("expire"))
    add("POST", "/silences/{ident}/extend", silences.change("extend"))
    add("GET", "/rules", rules.list)
    add("GET", "/rules/{name}", rules.show)
    add("GET", "/routes", routes.show)
    add("GET", "/login", login.show)
    add("POST", "/login", login.submit)
    add("POST", "/logout", login.logout)
    app.add("GET", "/static/{name}", static_file)


def _html_errors(pages: Pages, handler):
    """Run a page handler; its HttpErrors answer as an HTML page (a redirect as a redirect)."""
    async def run(request: Request) -> Response:
        try:
            result = handler(request)
            return await result if inspect.isawaitable(result) else result
        except Redirect as exc:
            return redirect(exc.headers["Location"], exc.headers.get("Set-Cookie"))
        except HttpError as exc:
            try:
                session = pages.auth.session(request)
            except HttpError:
                session = None
            response = pages.error_page(request, exc.status, exc.message, session)
            response.headers.update(exc.headers)
            return response
    return run


def static_file(request: Request) -> Response:
    name = request.params["name"]
    if name not in STATIC_FILES:
        raise HttpError(404, f"there is nothing at {request.path}")
    return Response(200, (STATIC / name).read_bytes(), STATIC_FILES[name])
