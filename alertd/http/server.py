"""A small HTTP/1.1 server on the daemon's asyncio loop: h11 parses, handlers answer.

h11 (the sans-I/O HTTP/1.1 library httpx is built on, so no new dependency) does the
protocol: request parsing, keep-alive, framing, HEAD. This module adds the I/O on
`asyncio.start_server`, limits (header and body size, connections with deadlines per request,
`alertd.connslots`), the Host and Origin guard (`alertd.hostcheck`), a tiny router with
`{name}` path parameters, and JSON/HTML/text responses. Handlers are plain or
async functions `handler(request) -> Response`; raising `HttpError` answers with its status
and a JSON `{"error": ...}` body. A handler bug answers 500 and is logged; the server goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from .. import __version__, jsontext
from ..connslots import Deadline, Slots
from ..hostcheck import HostCheck
from ..logthrottle import LogThrottle

SERVER_HEADER = f"alertd/{__version__}".encode()


class HttpError(Exception):
    """Answer with `status` and `{"error": message}`; `headers` are added to the response."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class Request:
    """One parsed request. Header names are lower-case; `params` are the path's `{name}`s."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""
    peer: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path)

    @property
    def query(self) -> dict[str, str]:
        """The last value of each query parameter."""
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query).items()}

    def json(self):
        """The body as JSON (an empty body is `{}`); HttpError 400 if it is not JSON."""
        if not self.body.strip():
            return {}
        try:
            return jsontext.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"the request body is not valid JSON: {exc}") from None


@dataclass
class Response:
    """A complete response: status, body bytes and extra headers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data, status: int = 200, headers: dict | None = None) -> "Response":
        body = json.dumps(data, indent=2, sort_keys=False, default=str).encode() + b"\n"
        return cls(status, body, "application/json", headers or {})

    @classmethod
    def html(cls, text: str, status: int = 200) -> "Response":
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> "Response":
        return cls(status, text.encode(), content_type)


class Routes:
    """Maps (method, path pattern) to handlers; 404 for unknown paths, 405 with `Allow`."""

    def __init__(self):
        self.routes: list[tuple[re.Pattern, str, object]] = []
        self.body_limits: dict[str, int] = {}  # path -> a larger body limit than the server's

    def add(self, method: str, pattern: str, handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self.routes.append((re.compile(regex), method.upper(), handler))

    async def __call__(self, request: Request) -> Response:
        allowed = []
        method = "GET" if request.method == "HEAD" else request.method
        for regex, route_method, handler in self.routes:
            match = regex.match(request.path)
            if not match:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            request.params = match.groupdict()
            result = handler(request)
            return await result if inspect.isawaitable(result) else result
        if allowed:
            raise HttpError(405, f"{request.method} is not allowed on {request.path}; use "
                            + " or ".join(sorted(set(allowed))), {"Allow": ", ".join(sorted(set(allowed)))})
        raise HttpError(404, f"there is nothing at {request.path}")


class HttpServer:
    """Serves `app(request) -> Response` on host:port until `close()`.

    `max_connections` slots (the slowest idle or reading connection makes room for a new
    one, see `alertd.connslots`); a request's head must arrive within `head_timeout` of its
    first byte and all of it within `request_timeout`; a kept-alive connection may wait
    `idle_timeout` for its next request. `hosts` checks Host and Origin (`alertd.hostcheck`;
    `host_setting` is the config key a refusal names).
    """

    def __init__(self, app, host: str, port: int, log, *, max_body: int = 1 << 20,
                 idle_timeout: float = 30.0, max_connections: int = 64, body_limits: dict | None = None,
                 head_timeout: float = 10.0, request_timeout: float = 30.0, hosts: HostCheck | None = None,
                 host_setting: str = "http.allowed_hosts"):
        self.app, self.host, self.port, self.log = app, host, port, log
        self.max_body, self.idle_timeout, self.max_connections = max_body, idle_timeout, max_connections
        self.body_limits = body_limits or getattr(app, "body_limits", {})
        self.head_timeout, self.request_timeout = head_timeout, request_timeout
        self.hosts = hosts if hosts is not None else HostCheck((), host)
        self.host_setting = host_setting
        self.slots = Slots(max_connections)
        self._refusals = LogThrottle(60.0)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task] = set()
        self._busy: set[asyncio.Task] = set()  # connections in the middle of a request

    async def start(self) -> None:
        """Bind and listen; raises OSError (e.g. EADDRINUSE) when the address is unusable."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port,
                                                  reuse_address=True, limit=1 << 16)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def close(self, grace: float = 2.0) -> None:
        """Stop accepting, let requests in progress finish (up to `grace` s), close the rest."""
        if self._server is None:
            return
        self._server.close()
        if self._busy:
            await asyncio.wait(list(self._busy), timeout=grace)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=1.0)
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            if not self.slots.admit(task):  # every slot is answering a request
                await self._send_bare(writer, 503, "too many connections; try again later")
                return
            await self._serve(reader, writer, task)
        except (asyncio.CancelledError, ConnectionError, asyncio.TimeoutError, TimeoutError):
            pass  # cancelled (shed for a newcomer, or closing), gone, or too slow
        finally:
            self.slots.release(task)
            self._connections.discard(task)
            self._busy.discard(task)
            writer.close()

    async def _serve(self, reader, writer, task) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        peer = writer.get_extra_info("peername")
        peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        while True:
            self.slots.set(task, "idle")
            try:
                request = await self._read_request(conn, reader, peer, task)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint or 400
                    await self._send(conn, writer, _error(status, f"bad request: {exc}"))
                return
            except HttpError as exc:  # body too large: answer, then close
                await self._send(conn, writer, _error(exc.status, exc.message))
                return
            if request is None:
                return
            self.slots.set(task, "busy")
            self._busy.add(task)
            response = self._guard(request) or await self._respond(request)
            self.slots.set(task, "sending")  # up to the client now: sheddable again
            await self._send(conn, writer, response, head=request.method == "HEAD")
            self._busy.discard(task)
            if conn.our_state is h11.MUST_CLOSE or self._server is None:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    def _guard(self, request: Request) -> Response | None:
        """403 for a Host this server does not answer to, or a write from another web page."""
        host, origin = request.headers.get("host"), request.headers.get("origin")
        if not self.hosts.host_ok(host):
            message, cause = self.hosts.refusal(host, self.host_setting), "host"
        elif not self.hosts.origin_ok(request.method, origin, host):
            message, cause = self.hosts.origin_refusal(origin, self.host_setting), "origin"
        else:
            return None
        held = self._refusals.allow(cause)
        if held is not None:
            self.log.warning("http_request_refused", method=request.method, path=request.path[:100],
                             peer=request.peer, error=message, similar_before=held)
        return _error(403, message)

    async def _read_request(self, conn, reader, peer, task) -> Request | None:
        deadline: Deadline | None = None  # set by the request's first byte
        first = 0.0

        async def next_event():
            nonlocal deadline, first
            while True:
                event = conn.next_event()
                if event is not h11.NEED_DATA:
                    return event
                wait = self.idle_timeout if deadline is None else deadline.remaining()
                data = await asyncio.wait_for(reader.read(65536), wait)
                if deadline is None and data:
                    first = time.monotonic()
                    deadline = Deadline(min(self.head_timeout, self.request_timeout))
                    self.slots.set(task, "reading")
                conn.receive_data(data)

        head = await next_event()
        if not isinstance(head, h11.Request):
            return None  # the client closed the connection
        self.slots.set(task, "reading")
        if deadline is None:  # the head was already read with the previous request
            first, deadline = time.monotonic(), Deadline(self.request_timeout)
        deadline.at = first + self.request_timeout  # the head is in: the body has what is left
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
        length = headers.get("content-length", "0")
        limit = self.body_limits.get(urlsplit(head.target.decode("latin-1")).path, self.max_body)
        if length.isdigit() and int(length) > limit:
            raise HttpError(413, f"the request body is larger than {limit} bytes")
        chunks, size = [], 0
        while True:
            event = await next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise HttpError(413, f"the request body is larger than {limit} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return None
        return Request(head.method.decode("ascii", "replace").upper(),
                       head.target.decode("latin-1"), headers, b"".join(chunks), peer)

    async def _respond(self, request: Request) -> Response:
        try:
            return await self.app(request)
        except HttpError as exc:
            response = _error(exc.status, exc.message)
            response.headers.update(exc.headers)
            return response
        except Exception as exc:  # a handler bug: answer 500, log, keep serving
            self.log.exception("http_handler_failed", method=request.method, path=request.path,
                               error=f"{type(exc).__name__}: {exc}")
            return _error(500, "internal error; see the daemon's log (event http_handler_failed)")

    async def _send(self, conn, writer, response: Response, head: bool = False) -> None:
        headers = [(b"content-type", response.content_type.encode()),
                   (b"content-length", str(len(response.body)).encode()),
                   (b"server", SERVER_HEADER), (b"cache-control", b"no-store"),
                   (b"x-content-type-options", b"nosniff")]
        headers += [(k.lower().encode(), str(v).encode()) for k, v in response.headers.items()]
        if self._server is None:
            headers.append((b"connection", b"close"))
        reason = HTTPStatus(response.status).phrase.encode() if response.status in _KNOWN else b""
        data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
        if not head and response.body:
            data += conn.send(h11.Data(data=response.body))
        data += conn.send(h11.EndOfMessage())
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.idle_timeout)

    async def _send_bare(self, writer, status: int, message: str) -> None:
        """Answer without reading the request (too many connections), then close."""
        body = _error(status, message).body
        writer.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n%s" % (status, HTTPStatus(status).phrase.encode(),
                                                          len(body), body))
        await asyncio.wait_for(writer.drain(), self.idle_timeout)


_KNOWN = {s.value for s in HTTPStatus}


def _error(status: int, message: str) -> Response:
    return Response.json({"error": message}, status)
