"""The `slack` notifier: posts to a Slack incoming webhook.

The webhook URL is the secret (anyone holding it can post), so it never appears in an
exception message or a log line: errors say "slack webhook answered 404", never the URL.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field

import httpx

from alertd import hookimpl
from alertd.base import Notifier, PermanentError, RetryableError
from alertd.model import Notification
from alertd.render import body_lines, incident_line, status_of, title
from alertd.schema import Duration, Secret

MAX_SECTIONS = 20  # Slack allows 50 blocks per message; keep messages readable
MAX_TEXT = 3000  # Slack's limit for one section's text
MAX_HEADER = 150  # Slack's limit for a header block
RETRYABLE_4XX = {408, 425, 429}  # request timeout, too early, too many requests
EMOJI = {"firing": ":red_circle:", "resolved": ":large_green_circle:"}


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


class SlackNotifier(Notifier):
    """Posts each notification to a Slack incoming webhook as text plus simple blocks.

    429 (honouring Retry-After), 408, 5xx, timeouts and network errors are retryable; any
    other 4xx (revoked webhook, archived channel, bad payload) is permanent.
    """

    type_name = "slack"

    @dataclass(frozen=True)
    class Params:
        """`webhook_url` (secret), optional `channel`/`username`/`icon_emoji`, `timeout`."""

        webhook_url: Secret = field(repr=False)
        channel: str | None = None
        username: str | None = None
        icon_emoji: str | None = None
        timeout: Duration = Duration(10)

        def check(self):
            if not self.webhook_url.startswith(("https://", "http://")):
                raise ValueError("webhook_url must be an https:// URL (the incoming webhook "
                                 "URL Slack shows when you add the integration)")
            if self.timeout <= 0:
                raise ValueError("timeout must be more than 0s; write a value such as 10s")

    def __init__(self, params, context):
        super().__init__(params, context)
        self._own_client: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self.context.http is not None:
            return self.context.http
        if self._own_client is None:
            self._own_client = httpx.AsyncClient(timeout=float(self.params.timeout))
        return self._own_client

    def payload(self, n: Notification) -> dict:
        """The JSON body: `text` (plain fallback) and header/section/context blocks."""
        head = title(n)
        text = _cut(escape("\n".join([head, *body_lines(n)])), MAX_TEXT)
        blocks: list[dict] = [{"type": "header",
                               "text": {"type": "plain_text", "text": _cut(head, MAX_HEADER)}}]
        for inc in n.incidents[:MAX_SECTIONS]:
            status = status_of(inc, n.kind)
            lines = [f"{EMOJI.get(status, ':warning:')} *{escape(status.upper())}* "
                     f"{escape(incident_line(inc, n.kind, n.created_at))}"]
            if inc.severity:
                lines.append(f"severity: *{escape(inc.severity)}*")
            lines += [f"{escape(k)}: {escape(v)}" for k, v in sorted(inc.annotations.items())]
            blocks.append({"type": "section",
                           "text": {"type": "mrkdwn", "text": _cut("\n".join(lines), MAX_TEXT)}})
        if len(n.incidents) > MAX_SECTIONS:
            more = len(n.incidents) - MAX_SECTIONS
            blocks.append({"type": "context",
                           "elements": [{"type": "mrkdwn", "text": f"and {more} more"}]})
        if not n.incidents and n.text:
            blocks.append({"type": "section",
                           "text": {"type": "mrkdwn", "text": _cut(escape(n.text), MAX_TEXT)}})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": escape(f"alertd · receiver {n.receiver}")}]})
        body = {"text": text, "blocks": blocks}
        for key in ("channel", "username", "icon_emoji"):
            value = getattr(self.params, key)
            if value:
                body[key] = value
        return body

    def _scrub(self, text: str) -> str:
        secret = str(self.params.webhook_url)
        return text.replace(secret, "<webhook_url>") if secret else text

    async def send(self, notification: Notification) -> str:
        try:
            response = await self._client().post(self.params.webhook_url,
                                                 json=self.payload(notification),
                                                 timeout=float(self.params.timeout))
        except httpx.InvalidURL:
            raise PermanentError("slack webhook_url is not a valid URL; copy it again from "
                                 "Slack's incoming webhook settings") from None
        except httpx.TimeoutException:
            raise RetryableError(f"slack webhook timed out after {self.params.timeout:g}s") from None
        except httpx.HTTPError as exc:  # connection refused, DNS, TLS, protocol errors
            detail = self._scrub(str(exc)) or type(exc).__name__
            raise RetryableError(f"slack webhook unreachable: {detail}") from None
        status = response.status_code
        answer = self._scrub(" ".join(response.text.split())[:200])
        if 200 <= status < 300:
            return f"{status} {answer or 'ok'}"
        message = f"slack webhook answered {status}" + (f": {answer}" if answer else "")
        if status in RETRYABLE_4XX or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self.context.now())
            raise RetryableError(message, retry_after=retry_after)
        if 300 <= status < 400:
            message += "; check webhook_url (redirects are not followed)"
        raise PermanentError(message)

    async def close(self) -> None:
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None


@hookimpl
def register_notifiers(register):
    register(SlackNotifier)
