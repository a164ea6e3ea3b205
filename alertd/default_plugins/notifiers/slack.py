"""The `slack` notifier: an incoming webhook, or a bot token posting with chat.postMessage.

Messages use Block Kit (a header, one section per incident or a compact list for a group,
"+N more" past `max_incidents`, a context line with the silence/ack commands) with a
plain-text fallback for notifications. In bot-token mode the first notice of an incident
starts a message and every later one (repeat, resolve) is posted in its thread; the thread
is remembered in the store (`notifier_state`) so it survives restarts.

The webhook URL and the token are secrets: errors name the Slack method or "slack webhook",
never the URL or token.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from alertd import hookimpl
from alertd.base import PermanentError, RetryableError
from alertd.config.schema import Secret
from alertd.model import Notification
from alertd.render.renderer import mrkdwn_escape

from ...http_notifier import HttpNotifier, HttpParams, check_url, parse_retry_after  # noqa: F401  (re-exported)

MAX_TEXT = 3000  # Slack's limit for one section's text
MAX_HEADER = 150  # Slack's limit for a header block
MAX_BLOCKS = 50
# chat.postMessage errors worth retrying; any other error is a setup problem (permanent).
RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                    "request_timeout", "team_added_to_org"}
THREAD_ERRORS = {"thread_not_found", "invalid_thread_ts", "message_not_found"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chunks(lines: list[str], limit: int = MAX_TEXT) -> list[str]:
    """Join lines into texts of at most `limit` characters (a longer line is cut)."""
    out, current = [], ""
    for line in lines:
        line = _cut(line, limit)
        if current and len(current) + 1 + len(line) > limit:
            out.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, MAX_TEXT)}}


class SlackNotifier(HttpNotifier):
    """Posts to Slack through an incoming webhook or, with a bot token, chat.postMessage.

    429 (honouring Retry-After), 408, 5xx, timeouts, network errors and Slack's transient
    errors are retryable; any other 4xx or API error (revoked token, unknown channel,
    archived channel) is permanent.
    """

    type_name = "slack"
    service = "slack"
    text_flavour = "slack"

    @dataclass(frozen=True, kw_only=True)
    class Params(HttpParams):
        """`webhook_url` (secret) or `token` (secret) + `channel`; looks and templates."""

        webhook_url: Secret | None = field(default=None, repr=False)
        token: Secret | None = field(default=None, repr=False)
        channel: str | None = None
        username: str | None = None
        icon_emoji: str | None = None
        api_url: str = "https://slack.com/api"
        max_incidents: int = 20
        broadcast_replies: bool = False

        def check(self):
            super().check()
            if bool(self.webhook_url) == bool(self.token):
                raise ValueError("set either webhook_url (an incoming webhook) or token (a bot "
                                 "token, xoxb-...) with channel, not both")
            if self.webhook_url:
                try:
                    check_url(self.webhook_url, "webhook_url")
                except ValueError:
                    raise ValueError("webhook_url must be an https:// URL (the incoming webhook "
                                     "URL Slack shows when you add the integration)") from None
            if self.token and not self.channel:
                raise ValueError("a bot token needs a channel to post to; add channel: "
                                 "\"#alerts\" (or a channel ID such as C0123456)")
            check_url(self.api_url, "api_url")
            if not 1 <= self.max_incidents <= 40:
                raise ValueError("max_incidents must be between 1 and 40 (Slack allows 50 "
                                 "blocks per message)")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.scope = f"slack:{context.name}:{params.channel or 'webhook'}"

    def incident_limit(self, params) -> int:
        return params.max_incidents

    def secrets(self) -> list[str]:
        return [str(self.params.webhook_url or ""), str(self.params.token or "")]

    # -- the message ------------------------------------------------------------------------
    def payload(self, n: Notification) -> dict:
        """The message body: `text` (escaped plain fallback) and Block Kit `blocks`."""
        r = self.renderer
        view = r.view(n)
        title = r.render("title", view)
        blocks: list[dict] = [{"type": "header", "text": {
            "type": "plain_text", "text": _cut(title, MAX_HEADER), "emoji": True}}]
        if r.has_override("text"):
            body = r.render("text", view)
            blocks += [_section(chunk) for chunk in _chunks(body.splitlines())]
            fallback = f"{mrkdwn_escape(title)}\n{body}"
        else:
            fallback = mrkdwn_escape(f"{title}\n{r.render('text', view)}")
            if not n.incidents:
                if view["note"]:
                    blocks.append(_section(mrkdwn_escape(view["note"])))
            elif view["count"] == 1:
                blocks.append(_section(r.render("slack", view, inc=view["incidents"][0], single=True)))
            else:
                lines = [r.render("slack", view, inc=inc, single=False) for inc in view["listed"]]
                blocks += [_section(chunk) for chunk in _chunks(lines)]
            if view["more"]:
                blocks.append({"type": "context", "elements": [
                    {"type": "mrkdwn", "text": f"+{view['more']} more"}]})
        footer = [line for line in r.render("slack_footer", view).splitlines() if line.strip()]
        footer.append(mrkdwn_escape(f"alertd · {n.receiver} · {view['created']}"))
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _cut(line, MAX_TEXT)} for line in footer[:10]]})
        body = {"text": _cut(fallback, MAX_TEXT), "blocks": blocks[:MAX_BLOCKS]}
        for key in ("channel", "username", "icon_emoji"):
            value = getattr(self.params, key)
            if value:
                body[key] = value
        return body

    def preview(self, notification: Notification) -> str:
        mode = f"chat.postMessage to {self.params.channel}" if self.params.token else "incoming webhook"
        return f"POST ({mode})\n" + json.dumps(self.payload(notification), indent=2, ensure_ascii=False)

    # -- sending ----------------------------------------------------------------------------
    async def send(self, notification: Notification) -> str:
        body = self.payload(notification)
        if self.params.token:
            return await self._post_bot(notification, body)
        response = await self.post_json(str(self.params.webhook_url), body, what="slack webhook")
        self.raise_for_status(response, "slack webhook")
        return f"{response.status_code} {self.answer_text(response) or 'ok'}"

    def _state(self):
        return getattr(self.context.store, "notifier_state", None)

    def _thread_of(self, n: Notification) -> dict | None:
        """The thread most of the notification's incidents already live in, if any."""
        state = self._state()
        if state is None:
            return None
        found = [state.get(self.scope, f"{i.fingerprint}:{i.id}") for i in n.incidents]
        found = [(t["channel"], t["ts"]) for t in found if t]
        if not found:
            return None
        (channel, ts), _ = Counter(found).most_common(1)[0]
        return {"channel": channel, "ts": ts}

    async def _post_bot(self, n: Notification, body: dict) -> str:
        thread = self._thread_of(n)
        if thread is not None:
            body = {**body, "channel": thread["channel"], "thread_ts": thread["ts"]}
            if self.params.broadcast_replies:
                body["reply_broadcast"] = True
        try:
            data = await self._call("chat.postMessage", body)
        except PermanentError as exc:
            if thread is None or getattr(exc, "slack_error", "") not in THREAD_ERRORS:
                raise
            thread = None  # the first message is gone: start a new one
            body = {k: v for k, v in body.items() if k not in ("thread_ts", "reply_broadcast")}
            body["channel"] = self.params.channel
            data = await self._call("chat.postMessage", body)
        self._remember(n, thread or {"channel": data.get("channel"), "ts": data.get("ts")})
        where = f"in thread {thread['ts']}" if thread else f"as {data.get('ts')}"
        return f"posted to {data.get('channel')} {where}"

    def _remember(self, n: Notification, thread: dict) -> None:
        state = self._state()
        if state is None or not thread.get("ts"):
            return
        now = self.context.now()
        for inc in n.incidents:
            key = f"{inc.fingerprint}:{inc.id}"
            if inc.state == "resolved" or inc.resolved_at is not None:
                state.delete(self.scope, key)  # the story is over; nothing more will follow
            elif state.get(self.scope, key) is None:
                state.put(self.scope, key, thread, now)

    async def _call(self, method: str, body: dict) -> dict:
        """Call a Web API method; return its JSON or raise a classified error."""
        url = f"{self.params.api_url.rstrip('/')}/{method}"
        what = f"slack {method}"
        response = await self.post_json(url, body, what=what, headers={
            "Authorization": f"Bearer {self.params.token}",
            "Content-Type": "application/json; charset=utf-8"})
        self.raise_for_status(response, what)
        try:
            data = response.json()
        except ValueError:
            raise RetryableError(f"{what} answered {response.status_code} with no JSON: "
                                 f"{self.answer_text(response, 80)}") from None
        if data.get("ok"):
            return data
        error = str(data.get("error") or "unknown_error")
        message = f"{what} failed: {error}"
        if error in RETRYABLE_ERRORS:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self.context.now())
            raise RetryableError(message, retry_after=retry_after)
        hints = {"channel_not_found": "; check channel and invite the bot to it",
                 "not_in_channel": "; invite the bot to the channel (/invite @yourbot)",
                 "invalid_auth": "; check token (a bot token starts with xoxb-)",
                 "not_authed": "; check token", "missing_scope": "; give the bot the chat:write scope"}
        exc = PermanentError(self.scrub(message + hints.get(error, "")))
        exc.slack_error = error
        raise exc


@hookimpl
def register_notifiers(register):
    register(SlackNotifier)
