"""What every page shares: the header (with its health badge), the login state, rendering,
redirects after a form, and reading samples for charts off the event loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from ..server import HttpError, Request, Response
from ..templating import render

PAGE_SIZE = 100
SOURCE_FAILING_AFTER = 3  # as the alertd_source_failing meta-incident


@dataclass(frozen=True)
class Badge:
    """The header's health badge: ok (green), warn (amber) or bad (red), and why."""

    level: str
    text: str
    reasons: tuple[str, ...] = ()


def badge(info: dict, rules: list) -> Badge:
    """Red when alertd is unhealthy, a source keeps failing or a rule is in error; amber while
    starting or draining, when a source just failed, a rule has no data or a reload failed."""
    bad, warn = list(info["problems"]), []
    for name, s in info["sources"].items():
        errors = s["consecutive_errors"]
        if errors:
            text = f'source {name} failed {errors} poll{"s" if errors != 1 else ""} in a row: {s["last_error"]}'
            (bad if errors >= SOURCE_FAILING_AFTER else warn).append(text)
    for h in rules:
        if h.state == "error" and not h.reason.startswith("the source"):
            bad.append(f"rule {h.name}: {h.reason}")
        elif h.state == "nodata":
            warn.append(f"rule {h.name}: {h.reason}")
    reload = info["last_reload"]
    if reload and not reload["ok"]:
        warn.append("the last config reload failed: " + "; ".join(reload["problems"][:3]))
    if bad:
        return Badge("bad", f"{len(bad)} problem{'s' if len(bad) != 1 else ''}", tuple(bad + warn))
    if info["draining"]:
        return Badge("warn", "draining", tuple(warn))
    if not info["ready"]:
        return Badge("warn", "starting", tuple(warn))
    if warn:
        return Badge("warn", f"{len(warn)} warning{'s' if len(warn) != 1 else ''}", tuple(warn))
    return Badge("ok", "ok")


class Pages:
    """The state, the login, and rendering for the page handlers."""

    def __init__(self, state, auth):
        self.state, self.auth = state, auth

    @property
    def base(self) -> str:
        """The path alertd's pages live under at the external URL ("" at the root)."""
        return urlsplit(self.state.config().http.external_url).path.rstrip("/")

    def store(self):
        return self.state.open_store()

    def reader_guard(self, request: Request):
        """The session, or a redirect to the login page when pages need a login."""
        session = self.auth.session(request)
        if session is None and self.state.config().http.login.pages_need_login:
            raise Redirect(f"{self.base}/login?" + urlencode({"next": request.target}))
        return session

    def page(self, request: Request, template: str, *, title: str, nav: str, session=None, status: int = 200,
             headers: dict | None = None, **context) -> Response:
        """`template` with the header, login and CSRF token every page gets."""
        info = self.state.status()
        rules = self.state.rule_health()
        hc = self.state.config().http
        return render(template, status=status, headers=headers, title=title, nav=nav, base=self.base, info=info,
                      badge=badge(info, rules), session=session, csrf=self.auth.csrf_for(session),
                      writes_enabled=hc.writes_enabled or hc.login.method == "header",
                      login_method=hc.login.method, request_target=request.target, **context)

    def error_page(self, request: Request, status: int, message: str, session=None) -> Response:
        return self.page(request, "message.html", title="Not done" if status == 403 else "Error", nav="",
                         session=session, status=status, message=message, level="bad")


class Redirect(HttpError):
    """Answer 303 See Other to `location` (after a form, or to the login page)."""

    def __init__(self, location: str, cookie: str | None = None):
        headers = {"Location": location}
        if cookie:
            headers["Set-Cookie"] = cookie
        super().__init__(303, f"see {location}", headers)


def redirect(location: str, cookie: str | None = None) -> Response:
    headers = {"Location": location}
    if cookie:
        headers["Set-Cookie"] = cookie
    return Response(303, b"", "text/plain; charset=utf-8", headers)


def safe_next(target: str | None, base: str) -> str:
    """A local path to go to after logging in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return f"{base}/"
    return quote(target, safe="/?=&%:@-._~+,;")


async def read_recent(store, keys: list[str], points: int, before: float | None = None,
                      source: str | None = None) -> dict:
    """The last `points` samples of `keys` of `source` (a rule's: series belong to their
    source), before a time, read on a connection of its own in a thread: thousands of rows
    would otherwise hold up the event loop and the ticks on it."""
    if not keys:
        return {}
    if store.path == ":memory:":
        return store.samples.recent(keys, points, before=before, source=source)

    def read():
        with store.reader() as reader:
            return reader.samples.recent(keys, points, before=before, source=source)

    return await asyncio.to_thread(read)
