"""HTTP requests for sources (`prometheus`, `http_json`): auth, TLS, timeouts, size limits.

`HttpParams` holds the keys every HTTP source accepts; `HttpFetcher` makes one request with
them and turns every way it can go wrong (refused connection, timeout, TLS, a body larger
than `max_bytes`, an HTTP error status, an HTML page instead of JSON) into a `SourceError`
sentence naming the URL (without its query string or user info) and an excerpt of the body.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

from .. import jsontext
from ..base import SourceError
from ..config.schema import CredentialURL, Secret
from .common import deadline, describe_payload, public_url


@dataclass(frozen=True, kw_only=True)
class HttpParams:
    """Keys shared by HTTP sources: where, how to authenticate, TLS and limits."""

    url: CredentialURL
    headers: dict[str, str] = field(default_factory=dict)
    secret_headers: dict[str, Secret] = field(default_factory=dict)
    bearer_token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    tls_verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    max_bytes: int = 10_000_000

    def check_http(self) -> None:
        """Cross-field rules (called from the subclass's `check`)."""
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f'url "{public_url(self.url)}" must start with http:// or https://')
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as exc:
            raise ValueError(f"url is not a valid URL ({exc}); check the host and port") from None
        if not parts.hostname:
            raise ValueError("url has no host; write it like http://127.0.0.1:9090")
        if self.password is not None and self.username is None:
            raise ValueError('password is set but username is not; add "username" for basic auth')
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("use either bearer_token or username/password, not both")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError('key_file is set but cert_file is not; add the client certificate "cert_file"')
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be a positive number of bytes")

    def check(self) -> None:
        self.check_http()


class Answer(NamedTuple):
    """A complete HTTP answer: status, headers and the (size-checked) body."""

    url: str  # public form, for messages
    status: int
    content_type: str
    body: bytes

    def json(self):
        """The body as JSON, or SourceError saying what came instead (e.g. an HTML page)."""
        try:
            return jsontext.loads(self.body)
        except ValueError:
            raise SourceError(f"{self.url} answered HTTP {self.status} with "
                              f"{describe_payload(self.body, self.content_type)}, not JSON",
                              "bad_payload") from None

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise SourceError(f"{self.url} answered HTTP {self.status}: "
                              f"{describe_payload(self.body, self.content_type)}", "http_status")


class HttpFetcher:
    """Makes requests for one source; uses the daemon's shared client unless TLS differs."""

    def __init__(self, params: HttpParams, context):
        self.params, self.context = params, context
        self._own: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        p = self.params
        if self.context.http is not None and p.tls_verify and not (p.ca_file or p.cert_file):
            return self.context.http
        if self._own is None:
            self._own = httpx.AsyncClient(verify=self._tls())
        return self._own

    def _tls(self):
        p = self.params
        if not p.tls_verify:
            return False
        try:
            ctx = ssl.create_default_context(cafile=p.ca_file)
            if p.cert_file:
                ctx.load_cert_chain(p.cert_file, p.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(f"cannot load the TLS files (ca_file/cert_file/key_file): {exc}", "tls") from None
        return ctx

    def _headers(self) -> dict[str, str]:
        p = self.params
        headers = {"User-Agent": "alertd", **p.headers, **p.secret_headers}
        if p.bearer_token:
            headers["Authorization"] = f"Bearer {p.bearer_token}"
        return headers

    async def request(self, method: str = "GET", url: str | None = None, **kwargs) -> Answer:
        """One request (`params`, `data`, `json` as in httpx); the answer with its whole body."""
        p = self.params
        url = url or p.url
        shown = public_url(url)
        limit = deadline(self.context)
        auth = httpx.BasicAuth(p.username, p.password or "") if p.username is not None else None
        try:
            client = self._client()
            async with client.stream(method, url, headers=self._headers(), auth=auth,
                                     timeout=httpx.Timeout(limit), **kwargs) as resp:
                declared = int(resp.headers.get("content-length") or 0)
                if declared > p.max_bytes:
                    raise self._too_large(shown, declared)
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > p.max_bytes:
                        raise self._too_large(shown, len(body))
                return Answer(shown, resp.status_code, resp.headers.get("content-type", ""), bytes(body))
        except httpx.TimeoutException:
            raise SourceError(f"no answer from {shown} within {limit:g}s; raise the source's "
                              "timeout or check the server", "timeout") from None
        except httpx.ConnectError as exc:
            raise SourceError(f"cannot connect to {shown}: {_first_line(exc)}", "connect") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"the request to {shown} failed: {type(exc).__name__}: {_first_line(exc)}",
                              "connect") from None

    def _too_large(self, shown: str, size: int) -> SourceError:
        return SourceError(f"the answer of {shown} is larger than max_bytes ({self.params.max_bytes} "
                           f"bytes, got {size} so far); narrow the request or raise max_bytes",
                           "too_large")

    async def close(self) -> None:
        if self._own is not None:
            await self._own.aclose()
            self._own = None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
