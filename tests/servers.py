"""Real local servers for tests: an HTTP server that records requests and an SMTP server.

Both listen on 127.0.0.1 on a free port, run in a background thread, and work from plain
or asyncio tests. Nothing here sleeps: `wait_for(n)` blocks on a condition until n requests
(messages) have arrived, or fails after a timeout.

    with RecordingHTTPServer() as web:
        web.respond(429, {"Retry-After": "7"})     # the next answer; then 200 "ok"
        ...post to web.url + "/hook"...
        method, path, headers, body = web.requests[0]
        web.requests[0].json()

    with RecordingSMTPServer() as smtp:
        ...send to 127.0.0.1:smtp.port...
        smtp.messages[0]["Subject"], smtp.envelopes[0].rcpt_tos

Pytest fixtures `http_server` and `smtp_server` wrap them; import them into a test module
or a conftest.py (`from servers import http_server, smtp_server`).
"""

from __future__ import annotations

import collections
import email
import email.policy
import json
import socket
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

import pytest

HANG = 0  # a response status meaning "never answer" (until the server closes): for timeouts


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (closed right after binding)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1.

    All n sockets stay bound until every port is chosen: two free_port() calls in a row can
    get the same port back from the kernel, and then two listeners of one daemon collide.
    """
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Recorded(NamedTuple):
    """One request as the server saw it; unpacks as (method, path, headers, body)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server_version = "RecordingHTTPServer/1"

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner: RecordingHTTPServer = self.server.owner
        request = Recorded(self.command, self.path,
                           {k.lower(): v for k, v in self.headers.items()}, body)
        status, headers, payload, number = owner._record(request)
        if number > owner._answer_first:
            owner._open.wait()  # held by `hold()` until `release()` (or close)
        if status == HANG:
            owner._closing.wait()
            self.close_connection = True
            return
        payload = payload.encode() if isinstance(payload, str) else payload
        self.send_response(status)
        headers = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format, *args):  # keep test output clean
        pass


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"  # keeps connections open between requests, as real services do
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # many notices at once (the differential test): no refused connects


class RecordingHTTPServer:
    """An HTTP server on 127.0.0.1 that records every request and answers from a queue.

    `url` is "http://127.0.0.1:PORT" (no trailing slash); `requests` is the list of
    `Recorded` requests; `responses` is a deque of (status, headers, body) popped one per
    request; when it is empty, `handler(request)` (if given) answers like a real service
    would (checking the payload, say), else `default` (200, {}, "ok"). A status of `HANG`
    makes the server hold the request without answering (to test client timeouts); `hold()`
    makes every request wait for its answer until `release()`. `keep_alive=True` answers in
    HTTP/1.1 and keeps connections open (the default closes each one, as HTTP/1.0 does).
    """

    def __init__(self, default=(200, {}, "ok"), handler=None, keep_alive: bool = False):
        self.default = default
        self.handler = handler
        self.keep_alive = keep_alive
        self.requests: list[Recorded] = []
        self.responses: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self._answer_first = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def respond(self, status: int, headers: dict | None = None, body: str | bytes = "") -> None:
        """Queue the answer to one future request."""
        self.responses.append((status, headers or {}, body))

    def hold(self, after: int = 0) -> None:
        """Make requests wait for an answer (they are recorded at once) until `release()`;
        with `after`, the first `after` requests (counted from the start) are answered."""
        self._answer_first = after
        self._open.clear()

    def release(self) -> None:
        """Answer the held requests, and later ones without waiting."""
        self._open.set()

    def _record(self, request: Recorded):
        with self._cond:
            self.requests.append(request)
            answer = self.responses.popleft() if self.responses else None
            if answer is None and self.handler is not None:
                answer = self.handler(request)
            self._cond.notify_all()
            return (*(answer or self.default), len(self.requests))

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[Recorded]:
        """Block until at least `n` requests arrived; return them (AssertionError on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise AssertionError(f"expected {n} requests, got {len(self.requests)}")
            return list(self.requests)

    def wait_until(self, predicate, timeout: float = 10.0, what: str = "a condition") -> list[Recorded]:
        """Block until `predicate(requests)` holds; return the requests (AssertionError on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.requests), timeout):
                raise AssertionError(f"timed out waiting for {what} ({len(self.requests)} requests)")
            return list(self.requests)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RecordingHTTPServer":
        self._httpd = _Server(("127.0.0.1", 0), _KeepAliveHandler if self.keep_alive else _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._open.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    __enter__ = start

    def __exit__(self, *exc):
        self.close()


class Envelope(NamedTuple):
    """One SMTP transaction: envelope sender, recipients, raw bytes and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class _SMTPHandler:
    def __init__(self, owner: "RecordingSMTPServer"):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.owner.reject_rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.owner.data_replies:
            return self.owner.data_replies.popleft()
        raw = envelope.original_content or envelope.content
        raw = raw if isinstance(raw, bytes) else raw.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.owner._record(Envelope(envelope.mail_from, list(envelope.rcpt_tos), raw, message))
        return "250 Message accepted for delivery"


class RecordingSMTPServer:
    """An aiosmtpd SMTP server on 127.0.0.1:`port` that records every accepted message.

    `messages` are parsed `email.message.EmailMessage`s; `envelopes` hold envelope sender,
    recipients and raw bytes too. `port` fixes the port (default: a free one).
    `reject_rcpt` maps an address to a reply ("550 5.1.1 no
    such user") to refuse it; `data_replies` is a deque of replies to DATA ("451 4.3.0 try
    later") used before accepting again. Extra keyword arguments go to aiosmtpd's
    Controller (e.g. `tls_context`, `authenticator`, `auth_require_tls`).
    """

    def __init__(self, port: int = 0, **controller_kwargs):
        self.fixed_port = port  # 0: a free one; else this one (a server coming back up)
        self.controller_kwargs = controller_kwargs
        self.envelopes: list[Envelope] = []
        self.reject_rcpt: dict[str, str] = {}
        self.data_replies: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._controller = None
        self.port = 0
        self.host = "127.0.0.1"

    @property
    def messages(self) -> list[EmailMessage]:
        return [e.message for e in self.envelopes]

    def _record(self, envelope: Envelope) -> None:
        with self._cond:
            self.envelopes.append(envelope)
            self._cond.notify_all()

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until at least `n` messages arrived; return them (AssertionError on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.envelopes) >= n, timeout):
                raise AssertionError(f"expected {n} messages, got {len(self.envelopes)}")
            return self.messages

    def start(self) -> "RecordingSMTPServer":
        from aiosmtpd.controller import Controller

        last = None
        for _ in range(1 if self.fixed_port else 5):  # free_port() can race; try a few
            self.port = self.fixed_port or free_port()
            controller = Controller(_SMTPHandler(self), hostname=self.host, port=self.port,
                                    **self.controller_kwargs)
            try:
                controller.start()
            except Exception as exc:  # pragma: no cover - port taken in between
                last = exc
                continue
            self._controller = controller
            return self
        raise RuntimeError(f"could not start the SMTP test server: {last}")

    def close(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    __enter__ = start

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def http_server():
    """A started `RecordingHTTPServer`, closed after the test."""
    with RecordingHTTPServer() as server:
        yield server


@pytest.fixture
def smtp_server():
    """A started `RecordingSMTPServer`, closed after the test."""
    with RecordingSMTPServer() as server:
        yield server
