"""The `push` source: an HTTP endpoint where applications send samples of business events.

Endpoints (on `host:port`, 127.0.0.1:9091 by default):

- `POST /push`: JSON lines (`{"name": ..., "value": ..., "labels": {...}, "ts": ...}`) or the
  Prometheus text format, by Content-Type (see `alertd.sources.push_bodies`).
- `PUT|POST /metrics/job/<job>[/<label>/<value>...]`: the Pushgateway API, so
  `prometheus_client.push_to_gateway` works unchanged; the path's labels are added.
- `GET /healthz`: 200 while the source runs.

A body is checked completely before anything is kept: a malformed one gets HTTP 400 with
the reason, one larger than `max_body` 413, a wrong token 401; nothing is stored. Accepted
samples (HTTP 202) wait in memory until the source's next poll (`every`) hands them to the
engine, so keep `every` short (1s-10s); a crash loses at most one interval of pushes.

HTTP/1.1 framing (keep-alive, chunked bodies) is done by `h11`, the sans-IO parser httpx
itself is built on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import unquote

import h11

from alertd import hookimpl
from alertd.base import Source, SourceError
from alertd.config.schema import Duration, Secret
from alertd.model import Sample
from alertd.sources.common import count
from alertd.sources.push_bodies import PushError, parse_body


class _Reject(Exception):
    def __init__(self, status: int, reason: str, headers=()):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, list(headers)


class Push(Source):
    """Receives pushed samples over HTTP; each poll hands over what arrived since the last."""

    type_name = "push"
    empty_ok = True  # an interval without pushes is normal

    @dataclass(frozen=True)
    class Params:
        """Where to listen, an optional bearer `token`, and size limits."""

        host: str = "127.0.0.1"
        port: int = 9091
        token: Secret | None = None
        max_body: int = 10_000_000
        max_pending: int = 1_000_000
        idle_timeout: Duration = Duration(30)

        def check(self) -> None:
            if not 0 <= self.port <= 65535:
                raise ValueError(f"port {self.port} is not a TCP port (0-65535)")
            if self.max_body < 1024:
                raise ValueError("max_body must be at least 1024 bytes")
            if self.max_pending < 1:
                raise ValueError("max_pending must be at least 1")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.pending: list[Sample] = []
        self._handed = 0  # how many of `pending` the last collect handed over
        self.server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        """The port actually bound (useful with `port: 0`)."""
        return self.server.sockets[0].getsockname()[1] if self.server else self.params.port

    async def start(self) -> None:
        p = self.params
        try:
            self.server = await asyncio.start_server(self._serve, p.host, p.port, limit=65536)
        except OSError as exc:
            raise SourceError(f"cannot listen on {p.host}:{p.port}: {exc.strerror or exc}; choose "
                              "another port or stop what uses it", "listen") from None
        if self.context.log is not None:
            self.context.log.info("push_listening", source=self.context.name, address=f"{p.host}:{self.port}")

    async def collect(self) -> list[Sample]:
        # hands over what is pending and keeps it: only once the tick storing it commits
        # (`committed`) is it dropped, so a tick that fails loses no push answered 202
        if self.server is None:
            await self.start()
        self._handed = len(self.pending)
        return self.pending[:self._handed]

    def committed(self) -> None:
        del self.pending[:self._handed]  # pushes that came in since stay for the next poll
        self._handed = 0

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None

    # -- HTTP ------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
        try:
            while True:
                request, body, problem = await self._read_request(conn, reader)
                if request is None and problem is None:  # the client has gone
                    break
                status, payload, headers = self._answer(request, body, problem)
                keep = problem is None and conn.our_state is h11.SEND_RESPONSE and status < 500
                self._send(conn, writer, status, payload, headers, keep)
                await writer.drain()
                if not keep or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (ConnectionError, asyncio.TimeoutError, h11.ProtocolError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _read_request(self, conn, reader):
        """(request, body, problem) of the next request; (None, ...) when the peer is gone."""
        request, body, limit = None, bytearray(), self.params.max_body
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                    return None, b"", None
                hint = "; this endpoint speaks plain HTTP, not HTTPS" if "\\x16\\x03" in str(exc) else ""
                return request, b"", _Reject(400, f"the request is not valid HTTP/1.1 "
                                             f"({str(exc)[:100]}){hint}")
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65536), self.params.idle_timeout)
                conn.receive_data(data)  # b"" means the peer closed
                if not data and conn.their_state is h11.IDLE:
                    return None, b"", None
                continue
            if isinstance(event, h11.Request):
                request = event
                declared = _header(event, b"content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    return request, b"", _Reject(413, f"the body is {int(declared)} bytes; the limit is "
                                                 f"{limit} (max_body)")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    return request, b"", _Reject(413, f"the body is larger than {limit} bytes (max_body)")
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body), None
            elif isinstance(event, h11.ConnectionClosed):
                return None, b"", None

    def _answer(self, request, body: bytes, problem) -> tuple[int, dict, list]:
        name = self.context.name
        try:
            if problem is not None:
                raise problem
            accepted = self._route(request, body)
        except _Reject as exc:
            count(self.context, "push_requests", name, str(exc.status))
            if self.context.log is not None and exc.status != 404:
                self.context.log.warning("push_rejected", source=name, status=exc.status,
                                         path=request.target.decode("latin-1")[:100] if request else "",
                                         error=exc.reason)
            return exc.status, {"error": exc.reason}, exc.headers
        count(self.context, "push_requests", name, "202" if accepted is not None else "200")
        if accepted is None:
            return 200, {"status": "ok"}, []
        count(self.context, "push_samples", name, amount=accepted)
        return 202, {"accepted": accepted}, []

    def _route(self, request, body: bytes) -> int | None:
        method = request.method.decode()
        path = request.target.decode("latin-1").split("?", 1)[0]
        if path == "/healthz":
            if method != "GET":
                raise _Reject(405, "use GET for /healthz", [("Allow", "GET")])
            return None
        if path == "/push" or path.startswith("/metrics/job/"):
            self._authorize(request)
            extra = _grouping_labels(path) if path != "/push" else None
            if method == "DELETE" and extra is not None:
                return 0  # Pushgateway clients delete groups; alertd keeps no groups
            if method not in ("POST", "PUT"):
                raise _Reject(405, f"use POST to send samples to {path}", [("Allow", "POST, PUT")])
            content_type = (_header(request, b"content-type") or b"").decode("latin-1")
            try:
                samples = parse_body(body, content_type, self.context.now(), extra)
            except PushError as exc:
                raise _Reject(400, f"nothing was stored: {exc}") from None
            if len(self.pending) + len(samples) > self.params.max_pending:
                raise _Reject(503, f"{len(self.pending)} samples are waiting for the next poll (max_pending "
                              f"{self.params.max_pending}); retry later",
                              [("Retry-After", str(int(self.context.interval or 5)))])
            self.pending.extend(samples)
            return len(samples)
        raise _Reject(404, f"no such endpoint {path[:80]!r}; send samples to POST /push or the "
                      "Pushgateway path /metrics/job/<job>")

    def _authorize(self, request) -> None:
        token = self.params.token
        if not token:
            return
        given = (_header(request, b"authorization") or b"").decode("latin-1")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), str(token).encode()):
            raise _Reject(401, "a valid bearer token is required (Authorization: Bearer ...)",
                          [("WWW-Authenticate", 'Bearer realm="alertd push"')])

    @staticmethod
    def _send(conn, writer, status: int, payload: dict, headers: list, keep: bool) -> None:
        data = json.dumps(payload).encode() + b"\n"
        head = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers]
        if not keep:
            head.append(("Connection", "close"))
        writer.write(conn.send(h11.Response(status_code=status, headers=head)))
        writer.write(conn.send(h11.Data(data=data)))
        writer.write(conn.send(h11.EndOfMessage()))


def _header(request, name: bytes) -> bytes | None:
    for key, value in request.headers:
        if key == name:
            return value
    return None


def _grouping_labels(path: str) -> dict[str, str]:
    """Labels of a Pushgateway path /metrics/job/<job>/<label>/<value>... (URL-decoded)."""
    parts = [unquote(p) for p in path[len("/metrics/"):].split("/")]
    if len(parts) % 2 or not all(parts[0::2]) or not parts[1]:
        raise _Reject(400, "the path must be /metrics/job/<job> followed by /<label>/<value> pairs")
    labels = {}
    for key, value in zip(parts[0::2], parts[1::2]):
        if key.endswith("@base64"):
            raise _Reject(400, "base64-encoded grouping labels are not supported; send the value plainly")
        labels[key] = value
    return labels


@hookimpl
def register_sources(register):
    register(Push)
