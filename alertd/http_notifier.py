"""`HttpNotifier`: the base class of notifiers that POST (Slack, webhooks, PagerDuty, ...).

It gives a plugin the params every HTTP notifier takes (`HttpParams`: template overrides, a
time zone and `timeout`), a renderer, the daemon's shared HTTP client, one POST, and one way
to classify answers.

Retryable: timeouts, connection errors, 408, 425, 429 (with Retry-After) and 5xx. Permanent:
every other 4xx, a redirect (not followed: a moved endpoint needs a config change) and an
invalid URL. Messages name the service and the host, never the URL's path or query (where
webhook tokens live), and any secret the notifier knows is scrubbed from answers.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .base import Notifier, PermanentError, RetryableError
from .config.schema import Duration
from .render.renderer import Renderer, TemplateParams

RETRYABLE_4XX = {408, 425, 429}  # request timeout, too early, too many requests
USER_AGENT = "alertd"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def safe_host(url: str) -> str:
    """`hooks.example.com:8443`: where a URL points, without credentials, path or query."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"


def check_url(url: str, what: str) -> None:
    """Raise ValueError (a config error) unless `url` is an absolute http(s) URL."""
    try:
        parts = urlsplit(str(url))
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:  # such as "http://[x/": a bracket that does not close
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host")


@dataclass(frozen=True, kw_only=True)
class HttpParams(TemplateParams):
    """Params of every HTTP notifier: template overrides, `timezone`, and `timeout` per request.

    A subclass's own `Params` derives from this (also `kw_only=True`) and calls
    `super().check()` from its `check`.
    """

    timeout: Duration = Duration(10)

    def check(self):
        if self.timeout <= 0:
            raise ValueError("timeout must be more than 0s; write a value such as 10s")


class HttpNotifier(Notifier):
    """A notifier that POSTs: `post_json` returns the response or raises a classified
    `DeliveryError`. Subclasses set `type_name`, `service` ("slack webhook"), `Params`
    (derived from `HttpParams`) and `secrets()` (scrubbed from every error message)."""

    service = "http endpoint"
    Params = HttpParams
    text_flavour = "text"  # how rendered text is escaped: "text", "html" or "slack"

    def __init__(self, params, context):
        super().__init__(params, context)
        self._own_client = None
        self.renderer = Renderer(params, receiver=context.name, log=context.log,
                                 text_flavour=self.text_flavour, limit=self.incident_limit(params))

    def incident_limit(self, params) -> int:
        """How many incidents a notice shows in full (0: all)."""
        return 0

    def secrets(self) -> list[str]:
        return []

    def scrub(self, text: str) -> str:
        """`text` without any secret, nor the path or query of a secret URL (where webhook
        tokens live: a service may echo the path in its error)."""
        hidden = set()
        for secret in (s for s in self.secrets() if s):
            hidden.add(secret)
            try:
                parts = urlsplit(secret)
            except ValueError:
                continue
            if parts.scheme in ("http", "https"):
                tail = parts.path + (f"?{parts.query}" if parts.query else "")
                if len(tail) >= 8:
                    hidden.add(tail)
        for secret in sorted(hidden, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def _client(self) -> httpx.AsyncClient:
        if self.context.http is not None:
            return self.context.http
        if getattr(self, "_own_client", None) is None:
            self._own_client = httpx.AsyncClient(timeout=float(self.params.timeout))
        return self._own_client

    async def post_json(self, url: str, body, *, headers: dict | None = None,
                        content: bytes | None = None, what: str | None = None) -> httpx.Response:
        """POST `body` as JSON (or the exact `content` bytes); classify failures."""
        what = what or f"{self.service} {safe_host(url)}"
        data = content if content is not None else json.dumps(body, ensure_ascii=False).encode()
        all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        try:
            response = await self._client().post(url, content=data, headers=all_headers,
                                                 timeout=float(self.params.timeout))
        except httpx.InvalidURL:
            raise PermanentError(f"{what}: the URL is not valid; check it in the config") from None
        except httpx.TimeoutException:
            raise RetryableError(f"{what} timed out after {self.params.timeout:g}s") from None
        except httpx.HTTPError as exc:  # connection refused, DNS, TLS, protocol errors
            detail = self.scrub(str(exc)) or type(exc).__name__
            raise RetryableError(f"{what} unreachable: {detail}") from None
        return response

    def answer_text(self, response: httpx.Response, limit: int = 200) -> str:
        return self.scrub(" ".join(response.text.split())[:limit])

    def raise_for_status(self, response: httpx.Response, what: str) -> None:
        """Raise a Retryable- or PermanentError for a non-2xx answer."""
        status = response.status_code
        if 200 <= status < 300:
            return
        answer = self.answer_text(response)
        message = f"{what} answered {status}" + (f": {answer}" if answer else "")
        if status in RETRYABLE_4XX or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self.context.now())
            raise RetryableError(message, retry_after=retry_after)
        if 300 <= status < 400:
            message += "; check the URL (redirects are not followed)"
        raise PermanentError(message)

    async def close(self) -> None:
        client = getattr(self, "_own_client", None)
        if client is not None:
            await client.aclose()
            self._own_client = None
