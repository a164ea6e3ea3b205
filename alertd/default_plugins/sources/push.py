"""The `push` source: an HTTP endpoint where applications send samples of business events.

Endpoints (on `host:port`, 127.0.0.1:9091 by default):

- `POST /push`: JSON lines (`{"name": ..., "value": ..., "labels": {...}, "ts": ...}`) or the
  Prometheus text format, by Content-Type (see `alertd.sources.push_bodies`).
- `PUT|POST /metrics/job/<job>[/<label>/<value>...]`: the Pushgateway API, so
  `prometheus_client.push_to_gateway` works unchanged; the path's labels are added.
- `GET /healthz`: 200 while the source runs.

A body is checked completely before anything is kept: a malformed one gets HTTP 400 with
the reason, one larger than `max_body` 413, a wrong token 401; nothing is stored. So is a
body with a point stamped more than 5 minutes ahead of the daemon's clock, or one that would
take the source past `max_series` series (a series counts for an hour after its last point).
Accepted samples (HTTP 202) wait in memory until a poll (`every`) hands them to the engine,
at most `max_per_poll` a poll (the rest wait for the next); they are dropped only once the
tick storing them has committed, so a tick that fails (store full or locked) loses none. A
crash loses at most what was waiting: keep `every` short (1s-10s).

Hostile clients meet limits, not a frozen daemon: bodies over 64 KiB are parsed 500 lines
at a time, the event loop serving others between slices (a worker thread would hold the GIL
and starve the loop just the same); at most `max_connections` connections, the slowest idle or half-sent one closed to
make room for a new one; a request must arrive whole within `request_timeout` of its first
byte; requests naming another host, and writes from a web page of another origin, get 403
(`alertd.hostcheck`; list extra names in `allowed_hosts`). Refusals are logged at most once
a minute per cause, with the number held back.

HTTP/1.1 framing (keep-alive, chunked bodies) is done by `h11`, the sans-IO parser httpx
itself is built on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from dataclasses import dataclass

import h11

from alertd import hookimpl
from alertd.base import Source, SourceError
from alertd.config.schema import Duration, Secret
from alertd.connslots import Deadline, Slots
from alertd.hostcheck import HostCheck
from alertd.logthrottle import LogThrottle
from alertd.model import Sample
from alertd.sources.common import count
from alertd.sources.push_bodies import PushError, grouping_labels, header, parse_body, parse_steps

SLICED = 64 * 1024  # bodies larger than this are parsed in slices, letting other work run between
ACTIVE = 3600.0  # a series counts toward max_series this long after its last point


class _Reject(Exception):
    def __init__(self, status: int, reason: str, headers=(), cause: str = ""):
        super().__init__(reason)
        self.status, self.reason, self.headers, self.cause = status, reason, list(headers), cause


class Push(Source):
    """Receives pushed samples over HTTP; each poll hands over what arrived since the last."""

    type_name = "push"
    empty_ok = True  # an interval without pushes is normal

    @dataclass(frozen=True)
    class Params:
        """Where to listen, an optional bearer `token`, size, connection and series limits."""

        host: str = "127.0.0.1"
        port: int = 9091
        token: Secret | None = None
        max_body: int = 10_000_000
        max_pending: int = 1_000_000
        max_per_poll: int = 10_000
        max_series: int = 10_000
        max_connections: int = 256
        idle_timeout: Duration = Duration(30)
        request_timeout: Duration = Duration(30)
        allowed_hosts: list[str] = ()

        def check(self) -> None:
            if not 0 <= self.port <= 65535:
                raise ValueError(f"port {self.port} is not a TCP port (0-65535)")
            if self.max_body < 1024:
                raise ValueError("max_body must be at least 1024 bytes")
            for key in ("max_pending", "max_per_poll", "max_series", "max_connections"):
                if getattr(self, key) < 1:
                    raise ValueError(f"{key} must be at least 1")
            if self.idle_timeout <= 0 or self.request_timeout <= 0:
                raise ValueError("idle_timeout and request_timeout must be more than 0s")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.pending: list[Sample] = []
        self._handed = 0  # how many of `pending` the last collect handed over
        self.series: dict[tuple, float] = {}  # (name, labels) -> when its last point came
        self._swept = time.monotonic()
        self.server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task] = set()
        self.slots = Slots(params.max_connections)
        self.hosts = HostCheck(params.allowed_hosts, params.host)
        self._parsing = asyncio.Semaphore(1)  # one big body parsed at a time, in slices
        self._throttle = LogThrottle(60.0)

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
        self._handed = min(len(self.pending), self.params.max_per_poll)
        return self.pending[:self._handed]

    def committed(self) -> None:
        del self.pending[:self._handed]  # pushes that came in since stay for the next poll
        self._handed = 0
        now = time.monotonic()
        if now - self._swept > 60:  # series silent for an hour no longer count
            self._swept = now
            self.series = {k: t for k, t in self.series.items() if now - t < ACTIVE}

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
            shed = self.slots.shed
            if not self.slots.admit(task):  # every slot is answering a push
                body = b'{"error": "too many connections; retry later"}\n'
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                             b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await asyncio.wait_for(writer.drain(), 5)
                return
            count(self.context, "connections_shed", self.context.name, amount=self.slots.shed - shed)
            while True:
                self.slots.set(task, "idle")
                request, body, problem = await self._read_request(conn, reader, task)
                if request is None and problem is None:  # the client has gone
                    break
                self.slots.set(task, "busy")
                status, payload, headers = await self._answer(request, body, problem)
                keep = problem is None and conn.our_state is h11.SEND_RESPONSE and status < 500
                self._send(conn, writer, status, payload, headers, keep)
                self.slots.set(task, "sending")
                await asyncio.wait_for(writer.drain(), float(self.params.request_timeout))
                if not keep or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (ConnectionError, asyncio.TimeoutError, h11.ProtocolError, asyncio.CancelledError):
            pass  # gone, too slow, broken, or shed to make room for a newcomer
        finally:
            self.slots.release(task)
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _read_request(self, conn, reader, task):
        """(request, body, problem) of the next request; (None, ...) when the peer is gone.
        Waits `idle_timeout` for a request to begin; from its first byte, the head must be
        in within 10 s and all of it within `request_timeout`."""
        request, body, limit = None, bytearray(), self.params.max_body
        deadline, first = None, 0.0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                    return None, b"", None
                hint = "; this endpoint speaks plain HTTP, not HTTPS" if "\\x16\\x03" in str(exc) else ""
                return request, b"", _Reject(400, f"the request is not valid HTTP/1.1 "
                                             f"({str(exc)[:100]}){hint}", cause="bad_http")
            if event is h11.NEED_DATA:
                wait = float(self.params.idle_timeout) if deadline is None else deadline.remaining()
                data = await asyncio.wait_for(reader.read(65536), wait)
                if deadline is None and data:
                    first = time.monotonic()
                    deadline = Deadline(min(10.0, float(self.params.request_timeout)))
                    self.slots.set(task, "reading")
                conn.receive_data(data)  # b"" means the peer closed
                if not data and conn.their_state is h11.IDLE:
                    return None, b"", None
                continue
            if isinstance(event, h11.Request):
                request = event
                if deadline is None:
                    first, deadline = time.monotonic(), Deadline(float(self.params.request_timeout))
                deadline.at = first + float(self.params.request_timeout)
                declared = header(event, b"content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    return request, b"", _Reject(413, f"the body is {int(declared)} bytes; the limit is "
                                                 f"{limit} (max_body)", cause="too_large")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    return request, b"", _Reject(413, f"the body is larger than {limit} bytes (max_body)",
                                                 cause="too_large")
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body), None
            elif isinstance(event, h11.ConnectionClosed):
                return None, b"", None

    async def _answer(self, request, body: bytes, problem) -> tuple[int, dict, list]:
        name = self.context.name
        try:
            if problem is not None:
                raise problem
            accepted = await self._route(request, body)
        except _Reject as exc:
            count(self.context, "push_requests", name, str(exc.status))
            held = self._throttle.allow(exc.cause or exc.status)
            if self.context.log is not None and exc.status != 404 and held is not None:
                self.context.log.warning("push_rejected", source=name, status=exc.status,
                                         path=request.target.decode("latin-1")[:100] if request else "",
                                         error=exc.reason, similar_before=held)
            return exc.status, {"error": exc.reason}, exc.headers
        count(self.context, "push_requests", name, "202" if accepted is not None else "200")
        if accepted is None:
            return 200, {"status": "ok"}, []
        count(self.context, "push_samples", name, amount=accepted)
        return 202, {"accepted": accepted}, []

    def _guard(self, request) -> None:
        host = header(request, b"host")
        host = host.decode("latin-1") if host is not None else None
        setting = f"sources.{self.context.name}.allowed_hosts"
        if not self.hosts.host_ok(host):
            raise _Reject(403, self.hosts.refusal(host, setting), cause="host")
        origin = header(request, b"origin")
        if not self.hosts.origin_ok(request.method.decode(), origin.decode("latin-1") if origin else None, host):
            raise _Reject(403, self.hosts.origin_refusal(origin.decode("latin-1"), setting), cause="origin")

    async def _route(self, request, body: bytes) -> int | None:
        method = request.method.decode()
        path = request.target.decode("latin-1").split("?", 1)[0]
        self._guard(request)
        if path == "/healthz":
            if method != "GET":
                raise _Reject(405, "use GET for /healthz", [("Allow", "GET")])
            return None
        if path == "/push" or path.startswith("/metrics/job/"):
            self._authorize(request)
            try:
                extra = grouping_labels(path) if path != "/push" else None
            except PushError as exc:
                raise _Reject(400, str(exc), cause="bad_path") from None
            if method == "DELETE" and extra is not None:
                return 0  # Pushgateway clients delete groups; alertd keeps no groups
            if method not in ("POST", "PUT"):
                raise _Reject(405, f"use POST to send samples to {path}", [("Allow", "POST, PUT")])
            samples = await self._parse(request, body, extra)
            keys: set = set()
            for start in range(0, len(samples), 5000):  # (400,000 label sets take a while)
                keys.update((s.name, s.labels) for s in samples[start:start + 5000])
                if len(samples) > 5000:
                    await asyncio.sleep(0)
            return self._keep(samples, keys)
        raise _Reject(404, f"no such endpoint {path[:80]!r}; send samples to POST /push or the "
                      "Pushgateway path /metrics/job/<job>")

    async def _parse(self, request, body: bytes, extra) -> list[Sample]:
        content_type = (header(request, b"content-type") or b"").decode("latin-1")
        now = self.context.now()
        not_after = now + self.future_tolerance
        try:
            if len(body) <= SLICED:
                return parse_body(body, content_type, now, extra, not_after)
            async with self._parsing:  # a 10 MB body takes a second or more to parse
                steps = parse_steps(body, content_type, now, extra, not_after)
                while True:
                    try:
                        next(steps)
                    except StopIteration as done:
                        return done.value
                    await asyncio.sleep(0)  # /healthz, the watchdog and the ticks go on
        except PushError as exc:
            cause = "future_timestamp" if exc.reason == "future_timestamp" else "bad_body"
            if cause == "future_timestamp":
                count(self.context, "push_refused", self.context.name, cause, amount=exc.count)
            raise _Reject(400, f"nothing was stored: {exc}", cause=cause) from None

    def _keep(self, samples: list[Sample], keys: set) -> int:
        """Queue `samples` (of the series `keys`) for the next polls, all or none: 503 when the
        queue is full, 400 when they would take the source past max_series."""
        p = self.params
        if len(self.pending) + len(samples) > p.max_pending:
            raise _Reject(503, f"{len(self.pending)} samples are waiting for the next poll (max_pending "
                          f"{p.max_pending}); retry later",
                          [("Retry-After", str(int(self.context.interval or 5)))], cause="full")
        now, series = time.monotonic(), self.series
        new = [k for k in keys if k not in series]
        if new and len(series) + len(new) > p.max_series:
            count(self.context, "push_refused", self.context.name, "max_series", amount=len(samples))
            raise _Reject(400, f"nothing was stored: the push adds {len(new)} new series and the source "
                          f"has {len(series)} of its max_series {p.max_series} (a series counts for an hour "
                          "after its last point); send fewer label combinations or raise max_series",
                          cause="max_series")
        for key in keys:
            series[key] = now
        self.pending.extend(samples)
        return len(samples)

    def _authorize(self, request) -> None:
        token = self.params.token
        if not token:
            return
        given = (header(request, b"authorization") or b"").decode("latin-1")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), str(token).encode()):
            raise _Reject(401, "a valid bearer token is required (Authorization: Bearer ...)",
                          [("WWW-Authenticate", 'Bearer realm="alertd push"')], cause="token")

    @staticmethod
    def _send(conn, writer, status: int, payload: dict, headers: list, keep: bool) -> None:
        data = json.dumps(payload).encode() + b"\n"
        head = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers]
        if not keep:
            head.append(("Connection", "close"))
        writer.write(conn.send(h11.Response(status_code=status, headers=head)))
        writer.write(conn.send(h11.Data(data=data)))
        writer.write(conn.send(h11.EndOfMessage()))


@hookimpl
def register_sources(register):
    register(Push)
