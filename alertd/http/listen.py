"""Starting the daemon's HTTP server on `http.listen`, and the one sentence when that fails."""

from __future__ import annotations

import errno

from ..hostcheck import HostCheck
from .app import make_app
from .server import HttpServer


class ListenError(Exception):
    """The HTTP server cannot listen; the message names the address, port and config key."""


async def open_server(state, hc) -> HttpServer:
    """A started server for the daemon's `state` (an AppState) on `hc` (an HttpConfig);
    ListenError if it cannot bind."""
    log = state.log
    server = HttpServer(make_app(state), hc.host, hc.port, log, hosts=HostCheck(hc.host_names, hc.host))
    try:
        await server.start()
    except OSError as exc:
        raise ListenError(listen_error(hc, exc)) from None
    log.info("http_listening", address=f"{hc.host}:{server.port}", port=server.port,
                    api_writes="enabled" if hc.writes_enabled else "disabled (no token or basic_auth)")
    if not hc.loopback:
        log.warning("http_public", address=hc.listen,
                           note="the read pages, /metrics and the read API need no login")
    return server


def listen_error(hc, exc: OSError) -> str:
    """One sentence for a failed bind, naming the address, the port and the config key."""
    key = f"http.listen ({hc.where})" if hc.where else "http.listen (not set: the default)"
    if exc.errno == errno.EADDRINUSE:
        why = f"port {hc.port} is already in use by another process"
    elif exc.errno == errno.EACCES:
        why = f"port {hc.port} needs privileges alertd does not have"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"{hc.host} is not an address of this host"
    else:
        why = exc.strerror or str(exc)
    return (f"cannot listen on {hc.listen}: {why}; set {key} to a free port, "
            "or stop the other process")
