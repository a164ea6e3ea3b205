"""Who is acting on the pages, and whether a form may change anything.

Three ways to log in (`http.login.method`, alertd/config/http_pages.py):

- `token` (default): a form asking for your name and the API token (`http.token`); the name
  is who the history names. With `http.basic_auth` set, its user and password log in too.
- `basic`: the browser's own prompt (HTTP basic auth): user = your name, password = the token
  (or the user and password of `http.basic_auth`).
- `header`: a reverse proxy that did the login names the user in a header
  (`X-Forwarded-User`), believed only from `trusted_proxies`; no session needed.

Either way, a form that changes something is refused with 403, and changes nothing, unless
someone is logged in and the form carries the CSRF token of their session. Failed logins are
logged (`login_failed`, never the token) and, after 10 from one address within 10 minutes,
refused for a while (429).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections import defaultdict, deque

from .server import HttpError, Request
from .session import COOKIE, Session, Signer, credential_tag, read_cookie, set_cookie

LOGIN_COOKIE = "alertd_login"  # the nonce a login form's CSRF token is bound to
MAX_FAILURES, FAILURE_WINDOW = 10, 600.0
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@- +")


def credentials_tag(hc) -> str:
    """A fingerprint of the credentials a login may use (token, basic auth password)."""
    basic = getattr(hc, "basic_auth", None)
    return credential_tag(f"{hc.token or ''}\n{basic[1] if basic else ''}" if hc.token or basic else "")


def clean_name(name: str) -> str:
    """A person's name for the history: trimmed; ValueError with a sentence if unusable."""
    name = " ".join(str(name).split())
    if not name or len(name) > 64 or not set(name) <= NAME_CHARS:
        raise ValueError("write your name (letters, digits, . _ @ - and spaces, at most 64 characters)")
    return name


class PageAuth:
    """Login, sessions and CSRF checks for the pages of one app."""

    def __init__(self, state):
        self.state = state
        self._signer: Signer | None = None
        self._failures: dict[str, deque] = defaultdict(deque)

    # -- parts ------------------------------------------------------------------------------
    @property
    def settings(self):
        return self.state.config().http

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = Signer.from_store(self.state.open_store())
        return self._signer

    def _peer_host(self, request: Request) -> str:
        host = request.peer.rsplit(":", 1)[0] if request.peer else ""
        return host.strip("[]")

    # -- who --------------------------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        """The request's session (from its cookie, or the trusted proxy's header)."""
        hc = self.settings
        if hc.login.method == "header":
            user = request.headers.get(hc.login.user_header, "").strip()
            if user and hc.login.trusts(self._peer_host(request)):
                try:
                    return Session(clean_name(user), "header", float("inf"), f"header:{clean_name(user)}")
                except ValueError:
                    return None
            return None
        session = self.signer.read(read_cookie(request.headers.get("cookie"), COOKIE), self.state.clock.now())
        if session is None or session.method != hc.login.method or session.tag != credentials_tag(hc):
            return None  # another login method now, or the credentials changed: log in again
        return session

    def csrf_for(self, session: Session | None) -> str:
        return self.signer.csrf(session.sid) if session is not None else ""

    def require(self, request: Request, form) -> Session:
        """The acting session of a form that changes something; 403 (nothing done) if none
        is logged in or the CSRF token is missing or wrong."""
        session = self.session(request)
        if session is None:
            self._refused(request, "not_logged_in")
            raise HttpError(403, "log in to change anything (the form was not carried out)")
        if not self.signer.csrf_ok(session.sid, form.get("csrf")):
            self._refused(request, "csrf")
            raise HttpError(403, "the form's security token is missing or old; reload the page and "
                            "try again (the form was not carried out)")
        return session

    def _refused(self, request: Request, reason: str) -> None:
        self.state.log.warning("page_write_refused", path=request.path, peer=request.peer, reason=reason)

    # -- logging in -------------------------------------------------------------------------
    def login_nonce(self, request: Request) -> tuple[str, str | None]:
        """(nonce, Set-Cookie value or None) for a login form: the nonce its CSRF token binds."""
        nonce = read_cookie(request.headers.get("cookie"), LOGIN_COOKIE)
        if nonce and len(nonce) == 32 and nonce.isalnum():
            return nonce, None
        nonce = secrets.token_hex(16)
        return nonce, set_cookie(LOGIN_COOKIE, nonce, max_age=3600, secure=self.settings.cookie_secure)

    def check_login_form(self, request: Request, form) -> None:
        nonce = read_cookie(request.headers.get("cookie"), LOGIN_COOKIE) or ""
        if not nonce or not self.signer.csrf_ok("login:" + nonce, form.get("csrf")):
            self._refused(request, "login_csrf")
            raise HttpError(403, "the login form's security token is missing or old; open the login page again")

    def verify(self, request: Request, token: str, user: str = "") -> bool:
        """Whether `token` is the API token, or `user` and `token` those of `http.basic_auth`
        (constant time), counting failures per address."""
        peer = self._peer_host(request)
        now = time.monotonic()
        if len(self._failures) > 10_000:  # many addresses: forget the quiet ones (bounded memory)
            for key in [k for k, v in self._failures.items() if not v or now - v[-1] > FAILURE_WINDOW]:
                del self._failures[key]
        failures = self._failures[peer]
        while failures and now - failures[0] > FAILURE_WINDOW:
            failures.popleft()
        if len(failures) >= MAX_FAILURES:
            raise HttpError(429, "too many failed logins from this address; wait ten minutes",
                            {"Retry-After": str(int(FAILURE_WINDOW))})
        hc = self.settings
        expected, basic = hc.token, getattr(hc, "basic_auth", None)
        ok = bool(expected) and hmac.compare_digest(str(token).encode(), str(expected).encode())
        if basic is not None:
            ok |= (hmac.compare_digest(str(user).encode(), str(basic[0]).encode())
                   & hmac.compare_digest(str(token).encode(), str(basic[1]).encode()))
        if ok:
            failures.clear()
            return True
        failures.append(now)
        self.state.log.warning("login_failed", peer=request.peer, failures=len(failures))
        return False

    def basic_credentials(self, request: Request) -> tuple[str, str] | None:
        """(name, password) of a Basic Authorization header, or None."""
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(given.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, password) if sep else None

    def new_session(self, user: str) -> str:
        """A Set-Cookie value for a session of `user` (the configured method and TTL)."""
        hc = self.settings
        ttl = hc.login.session_ttl
        value = self.signer.issue(user, hc.login.method, self.state.clock.now() + ttl, credentials_tag(hc))
        return set_cookie(COOKIE, value, max_age=int(ttl), secure=hc.cookie_secure)

    def end_session(self) -> str:
        return set_cookie(COOKIE, "", max_age=0, secure=self.settings.cookie_secure)
