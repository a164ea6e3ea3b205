"""The keys of the `http` section for people in a browser: links, login and the session cookie.

    http:
      external_url: https://alertd.example.com   # where people reach alertd (notices link there)
      login:
        method: token               # token: a form asking for your name and the API token
                                    # basic: the browser asks (user: your name, password: the token)
                                    # header: a reverse proxy's user header (proxy does the login)
        user_header: X-Forwarded-User        # method header
        trusted_proxies: [127.0.0.1, "::1"]  # method header: peers whose header is believed
        session_ttl: 12h
        pages: open                 # open: reading pages needs no login (as the read API); login
      cookie_secure: auto           # auto: Secure when external_url is https; true; false

`external_url` is Alertmanager's `--web.external-url`: notices link to the incident page and a
prefilled silence form there instead of printing CLI lines that only work on alertd's host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from .schema import Duration, Where, build

LOGIN_METHODS = ("token", "basic", "header")


@dataclass(frozen=True)
class LoginCore:
    """`http.login` as users write it."""

    method: Literal["token", "basic", "header"] = "token"
    user_header: str = "X-Forwarded-User"
    trusted_proxies: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    session_ttl: Duration = Duration(12 * 3600)
    pages: Literal["open", "login"] = "open"


@dataclass(frozen=True)
class LoginConfig:
    """How people log in to act from the pages (see the module docstring)."""

    method: str = "token"
    user_header: str = "x-forwarded-user"  # lower-case, as requests carry header names
    trusted_proxies: tuple = ("127.0.0.1", "::1")
    session_ttl: float = 12 * 3600.0
    pages_need_login: bool = False

    def trusts(self, peer_host: str) -> bool:
        """Whether a request from `peer_host` may name its user in `user_header`."""
        try:
            address = ipaddress.ip_address(peer_host)
        except ValueError:
            return False
        for item in self.trusted_proxies:
            try:
                if address in ipaddress.ip_network(item, strict=False):
                    return True
            except ValueError:
                continue
        return False


def build_external_url(value, where: Where) -> str:
    """`http.external_url`: an absolute http(s) URL without query or fragment; "" if unset."""
    if value in (None, ""):
        return ""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        where.error(f'"{text}" is not an absolute http(s) URL; write where people reach alertd, '
                    "such as https://alertd.example.com")
        return ""
    if parts.query or parts.fragment or "@" in parts.netloc:
        where.error(f'"{text}" has a query, fragment or credentials; write only scheme, host and path')
        return ""
    return text.rstrip("/")


def build_login(raw, where: Where) -> LoginConfig:
    """Validate `http.login` (or its absence: the defaults)."""
    core = build(LoginCore, raw, where)
    if core is None:
        return LoginConfig()
    bad = []
    for item in core.trusted_proxies:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            bad.append(str(item))
    if bad:
        where.child("trusted_proxies").error(f'"{bad[0]}" is not an IP address or network; write one '
                                             'such as 127.0.0.1 or 10.0.0.0/8')
    if core.session_ttl <= 0:
        where.child("session_ttl").error("session_ttl must be more than 0s; write a value such as 12h")
    header = core.user_header.strip()
    if not header or not all(c.isalnum() or c in "-_" for c in header):
        where.child("user_header").error(f'"{core.user_header}" is not a header name; write one such as '
                                         "X-Forwarded-User")
    return LoginConfig(core.method, header.lower(), tuple(str(p) for p in core.trusted_proxies),
                       float(core.session_ttl), core.pages == "login")


def build_cookie_secure(value, external_url: str, where: Where) -> bool:
    """`http.cookie_secure`: auto (Secure when the external URL is https), true or false."""
    if value is None or value == "auto":
        return external_url.startswith("https://")
    if isinstance(value, bool):
        return value
    where.error(f'expected auto, true or false, got {value!r}')
    return False
