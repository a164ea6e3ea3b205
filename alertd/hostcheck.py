"""Which `Host` and `Origin` headers alertd's HTTP servers answer (DNS rebinding, cross-site writes).

A web page can make a browser send requests to 127.0.0.1: DNS rebinding points a name the
page controls at the daemon's address, and the read API then answers the page as if it were
its own; a plain cross-site POST (`text/plain`, no preflight) reaches a push endpoint without
a token. Both servers (the daemon's `http.listen` and each `push` source) therefore check:

- `Host`: an IP address (what a browser sends when the page itself is on that address),
  `localhost`, this machine's host name, or a name in `allowed_hosts` (`*.example.com`
  matches its subdomains; `*` turns the check off). A request without `Host` (HTTP/1.0, not
  a browser) passes. Anything else gets 403 and one sentence naming the setting.
- `Origin`, on requests that change something (anything but GET and HEAD): absent (not a
  browser) or the request's own origin; another origin must be listed in `allowed_hosts`.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _split_host(value: str) -> str:
    """The host part of a Host header value (`name:port`, `[v6]:port`), lower-case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class HostCheck:
    """The Host and Origin rules of one server; see the module docstring."""

    def __init__(self, allowed=(), listen_host: str = ""):
        self.any = "*" in allowed
        names = {str(a).strip().lower().rstrip(".") for a in allowed if str(a).strip() and a != "*"}
        self.exact = {n for n in names if not n.startswith("*.")}
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))  # ".example.com"
        self.own = {"localhost", socket.gethostname().lower()}
        if listen_host and not _is_ip(listen_host):
            self.own.add(listen_host.lower())

    def _listed(self, host: str) -> bool:
        return host in self.exact or any(host.endswith(s) for s in self.suffixes)

    def host_ok(self, header: str | None) -> bool:
        """Whether a request with this Host header is answered."""
        if self.any or header is None:
            return True
        host = _split_host(header).rstrip(".")
        return _is_ip(host) or host in self.own or self._listed(host)

    def origin_ok(self, method: str, origin: str | None, host_header: str | None) -> bool:
        """Whether a request with this method and Origin may change something."""
        if self.any or method.upper() in SAFE_METHODS or origin is None:
            return True
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (a sandboxed frame, a file:// page) and junk
        if host_header is not None and parts.netloc.lower() == host_header.strip().lower():
            return True  # the page is on this very server
        return self._listed(_split_host(parts.netloc).rstrip("."))

    def refusal(self, header: str | None, setting: str) -> str:
        """One sentence for a refused Host header."""
        return (f'the Host header "{(header or "")[:100]}" is not a name this server answers to (a guard '
                f"against DNS rebinding); if it is this machine's, add it to {setting}")

    @staticmethod
    def origin_refusal(origin: str | None, setting: str) -> str:
        """One sentence for a refused Origin header."""
        return (f'a request from the web page at "{(origin or "")[:100]}" may not change anything here '
                f"(a guard against cross-site requests); if that page is yours, add its host to {setting}")
