"""Logging in and out of the pages (alertd/http/page_auth.py says how each method works)."""

from __future__ import annotations

from ..forms import parse_form
from ..page_auth import clean_name
from ..server import HttpError, Request, Response
from .common import Pages, redirect, safe_next


class LoginPages:
    """Handlers of /login (GET, POST) and /logout (POST)."""

    def __init__(self, pages: Pages):
        self.pages = pages
        self.state = pages.state
        self.auth = pages.auth

    def _form(self, request: Request, *, name: str = "", error: str = "", status: int = 200) -> Response:
        hc = self.state.config().http
        nonce, cookie = self.auth.login_nonce(request)
        session = self.auth.session(request)
        return self.pages.page(request, "login.html", title="Log in", nav="login", session=session, status=status,
                               headers={"Set-Cookie": cookie} if cookie else None, method=hc.login.method,
                               has_token=hc.writes_enabled, login_csrf=self.auth.signer.csrf("login:" + nonce),
                               next=safe_next(request.query.get("next"), self.pages.base), name=name, error=error)

    def show(self, request: Request) -> Response:
        hc = self.state.config().http
        if hc.login.method == "basic" and hc.writes_enabled:
            credentials = self.auth.basic_credentials(request)
            if credentials is not None and credentials[0].strip() and \
                    self.auth.verify(request, credentials[1], credentials[0]):
                try:
                    name = clean_name(credentials[0])
                except ValueError as exc:
                    return self._form(request, error=str(exc), status=400)
                return redirect(safe_next(request.query.get("next"), self.pages.base), self.auth.new_session(name))
            response = self._form(request, error="log in with your name as the user and the API token as the "
                                  "password" if credentials else "", status=401)
            response.headers["WWW-Authenticate"] = 'Basic realm="alertd", charset="UTF-8"'
            return response
        return self._form(request)

    def submit(self, request: Request) -> Response:
        form = parse_form(request)
        hc = self.state.config().http
        if hc.login.method != "token":
            raise HttpError(405, f"log in with the {hc.login.method} method here (see the login page)")
        self.auth.check_login_form(request, form)
        name = form.get("name")
        if not hc.writes_enabled:
            return self._form(request, name=name, error="changes from the pages are disabled because no API "
                              "token is configured; set http.token and reload alertd", status=403)
        try:
            name = clean_name(name)
        except ValueError as exc:
            return self._form(request, name=name, error=str(exc), status=400)
        if not self.auth.verify(request, form.get("token"), name):
            return self._form(request, name=name, error="that is not the API token (http.token of alertd's config)",
                              status=403)
        self.state.log.info("login", user=name, peer=request.peer)
        return redirect(safe_next(form.get("next"), self.pages.base), self.auth.new_session(name))

    def logout(self, request: Request) -> Response:
        form = parse_form(request)
        self.auth.require(request, form)
        return redirect(f"{self.pages.base}/", self.auth.end_session())
