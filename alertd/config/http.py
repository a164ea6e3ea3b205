"""The `http` section: where the daemon's HTTP server listens and the API's bearer token.

    http:
      listen: 127.0.0.1:9464          # host:port; [::1]:9464 for IPv6; port 0 picks a free one
      token: "${ALERTD_API_TOKEN}"    # or token_file: /run/credentials/alertd.service/api-token
      basic_auth:                     # optional: also accept HTTP basic auth for those calls
        username: prometheus
        password: "${ALERTD_API_PASSWORD}"   # or password_file: /path
      enabled: true                   # false: no HTTP server at all
      external_url: https://alertd.example.com   # pages, login, cookie: alertd/config/http_pages.py
      allowed_hosts: [alertd.example.com]   # names in the Host header besides IP addresses,
                                      # localhost, this machine's name and external_url's host

Requests whose Host header names another host are refused (403), and so are writes from
another web page's Origin: a web page must not reach the API by DNS rebinding or a cross-site
form (`alertd.hostcheck`).

Without `token` or `token_file`, the `ALERTD_API_TOKEN` environment variable is used; with no
token and no basic_auth the API's mutating calls (acknowledge, silences, posted alerts) are
disabled. Reads, /metrics, the health checks and the pages need no token (`login.pages: login`
puts the pages behind a login).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .http_pages import LoginConfig, build_cookie_secure, build_external_url, build_login
from .schema import Secret, Where, build, fields_of, suggest
from .yamlsrc import YamlMap

DEFAULT_LISTEN = "127.0.0.1:9464"
TOKEN_ENV = "ALERTD_API_TOKEN"
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class HttpCore:
    """The keys of the `http` section as users write them."""

    listen: str = DEFAULT_LISTEN
    enabled: bool = True
    token: Secret | None = None
    token_file: str | None = None
    basic_auth: Any = None
    external_url: str | None = None
    login: Any = None
    cookie_secure: Any = "auto"
    allowed_hosts: list[str] = ()


@dataclass(frozen=True)
class BasicAuthCore:
    """`http.basic_auth` as users write it."""

    username: str
    password: Secret | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class HttpConfig:
    """The validated `http` section. `where` ("file:line") locates `http.listen` for errors."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464
    token: Secret | None = None
    where: str = field(default="", compare=False)
    basic_auth: tuple[str, Secret] | None = None  # (username, password)
    external_url: str = ""  # where people reach alertd's pages ("" unknown: notices print CLI lines)
    login: LoginConfig = LoginConfig()
    cookie_secure: bool = False
    allowed_hosts: tuple[str, ...] = ()

    @property
    def host_names(self) -> tuple[str, ...]:
        """The names the Host check accepts besides its own: allowed_hosts and the host of
        external_url (where people reach the pages, perhaps through a proxy)."""
        own = urlsplit(self.external_url).hostname if self.external_url else None
        return self.allowed_hosts + ((own,) if own else ())

    @property
    def writes_enabled(self) -> bool:
        return bool(self.token) or self.basic_auth is not None

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def parse_listen(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port); ValueError with one sentence otherwise."""
    text = str(text).strip()
    hint = 'write host:port, such as "127.0.0.1:9464" or "[::1]:9464"'
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or ":" in host and not text.startswith("["):
        raise ValueError(f'"{text}" is not an address to listen on; {hint}')
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'the port of "{text}" must be a number from 0 to 65535; {hint}')
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f'"{host}" is not an IP address; {hint} (or use localhost)') from None
    return host, int(port)


def build_http(raw, where: Where, environ=None) -> HttpConfig:
    """Validate the raw `http` mapping (or None) into an HttpConfig, recording problems."""
    line = getattr(raw, "line", where.line)
    where = where.at(line, where.key)
    known = fields_of(HttpCore)
    if isinstance(raw, dict):  # report unknown keys, and still check the known ones
        for key in raw:
            if key not in known:
                where.child(str(key), _line(raw, key)).error(f'unknown key "{key}"{suggest(key, known)}')
        raw = _known(raw, known)
    core = build(HttpCore, raw, where)
    if core is None:
        return HttpConfig()
    listen_line = raw.line_of("listen") if isinstance(raw, YamlMap) else line
    host, port = "127.0.0.1", 9464
    try:
        host, port = parse_listen(core.listen)
    except ValueError as exc:
        where.child("listen", listen_line).error(str(exc))
    token = core.token
    if core.token is not None and core.token_file is not None:
        where.error('set "token" or "token_file", not both')
    elif core.token_file is not None:
        token = _read_token_file(core.token_file, where.child("token_file", _line(raw, "token_file")))
    elif token is None:
        env = os.environ if environ is None else environ
        token = Secret(env[TOKEN_ENV]) if env.get(TOKEN_ENV) else None
    if token is not None:
        token = Secret(str(token).strip())
        if len(token) < MIN_TOKEN_LENGTH:
            key = "token_file" if core.token_file else "token"
            where.child(key, _line(raw, key)).error(
                f"the API token is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} "
                "random characters (for example the output of: openssl rand -hex 32)")
        where.secrets.add(str(token))
    basic = _basic_auth(core.basic_auth, where.child("basic_auth", _line(raw, "basic_auth")))
    external_url = build_external_url(core.external_url, where.child("external_url", _line(raw, "external_url")))
    login = build_login(raw.get("login") if isinstance(raw, dict) else None,
                        where.child("login", _line(raw, "login")))
    secure = build_cookie_secure(core.cookie_secure, external_url,
                                 where.child("cookie_secure", _line(raw, "cookie_secure")))
    allowed = tuple(str(h).strip() for h in core.allowed_hosts or ())
    for name in allowed:
        if not name or "/" in name or " " in name:
            where.child("allowed_hosts", _line(raw, "allowed_hosts")).error(
                f'"{name}" is not a host name; write names such as alertd.example.com or *.example.com')
    return HttpConfig(core.enabled, host, port, token, f"{where.file}:{listen_line}", basic, external_url, login,
                      secure, allowed)


def _basic_auth(raw, where: Where) -> tuple[str, Secret] | None:
    """`basic_auth: {username, password | password_file}` -> (username, password)."""
    if raw is None:
        return None
    core = build(BasicAuthCore, raw, where)
    if core is None:
        return None
    if (core.password is None) == (core.password_file is None):
        where.error('set "password" or "password_file" (one of them)')
        return None
    password = core.password
    if core.password_file is not None:
        password = _read_token_file(core.password_file, where.child("password_file"), "password_file")
        if password is None:
            return None
    password = Secret(str(password))
    if len(password) < MIN_TOKEN_LENGTH:
        where.child("password").error(
            f"the password is {len(password)} characters long; use at least {MIN_TOKEN_LENGTH} "
            "random characters (for example the output of: openssl rand -hex 32)")
    if not core.username or ":" in core.username:
        where.child("username").error("the username must be set and may not contain a colon")
    where.secrets.add(str(password))
    return core.username, password


def _known(raw, keys) -> YamlMap:
    out = YamlMap((k, v) for k, v in raw.items() if k in keys)
    out.line, out.key_lines = getattr(raw, "line", 0), getattr(raw, "key_lines", {})
    return out


def _line(raw, key):
    return raw.line_of(key) if isinstance(raw, YamlMap) else None


def _read_token_file(path: str, where: Where, key: str = "token_file") -> Secret | None:
    try:
        return Secret(Path(path).read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        what = "token" if key == "token_file" else "password"
        where.error(f"cannot read the {what} file {path}: {reason}; create it (mode 0600) or "
                    f"remove {key}")
        return None
