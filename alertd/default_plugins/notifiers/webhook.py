"""The `webhook` notifier: a JSON POST to any URL, in alertd's format or Alertmanager's.

`format: alertd` (default) sends alertd's own JSON (docs/notifications.md) with the rendered
title and text; `format: alertmanager` sends Alertmanager's webhook body (version 4), so a
receiver written for Alertmanager works unchanged. Every request carries an
`Idempotency-Key` header (the same on retries); with `hmac_secret` it is also signed:
`X-Alertd-Signature: sha256=<hex HMAC-SHA256 of the exact body>`, as GitHub signs its hooks.

The URL, `authorization` and `hmac_secret` are secrets: errors name only the host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Literal

from alertd import hookimpl
from alertd.config.schema import Secret
from alertd.model import Notification

from ...http_notifier import HttpNotifier, HttpParams, check_url, safe_host
from ...render.payloads import alertd_payload, alertmanager_webhook

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name


class WebhookNotifier(HttpNotifier):
    """POSTs each notification as JSON; 2xx is delivered, 429/5xx/timeouts are retried,
    any other answer is permanent."""

    type_name = "webhook"
    service = "webhook"

    @dataclass(frozen=True, kw_only=True)
    class Params(HttpParams):
        """`url` (secret), `format`, extra `headers`, `authorization`, `hmac_secret`."""

        url: Secret = field(repr=False)
        format: Literal["alertd", "alertmanager"] = "alertd"
        headers: dict[str, str] = field(default_factory=dict)
        authorization: Secret | None = field(default=None, repr=False)
        hmac_secret: Secret | None = field(default=None, repr=False)
        signature_header: str = "X-Alertd-Signature"
        max_alerts: int = 0
        external_url: str = ""

        def check(self):
            super().check()
            check_url(self.url, "url")
            for name in (*self.headers, self.signature_header):
                if not _TOKEN.match(name):
                    raise ValueError(f'"{name}" is not an HTTP header name; use letters, digits '
                                     "and dashes")
            if self.authorization and any(h.lower() == "authorization" for h in self.headers):
                raise ValueError("Authorization is set twice (authorization and headers); keep "
                                 "authorization, which is kept secret")
            if self.max_alerts < 0:
                raise ValueError("max_alerts must be 0 (no limit) or more")

    def secrets(self) -> list[str]:
        p = self.params
        return [str(p.url), str(p.authorization or ""), str(p.hmac_secret or "")]

    def payload(self, n: Notification) -> dict:
        """The JSON body in the configured format."""
        if self.params.format == "alertmanager":
            return alertmanager_webhook(n, external_url=self.params.external_url,
                                        max_alerts=self.params.max_alerts)
        view = self.renderer.view(n)
        body = alertd_payload(n, view, self.renderer.render("title", view),
                              self.renderer.render("text", view))
        if self.params.max_alerts and len(body["incidents"]) > self.params.max_alerts:
            body["truncated"] = len(body["incidents"]) - self.params.max_alerts
            body["incidents"] = body["incidents"][: self.params.max_alerts]
        return body

    def signature(self, body: bytes) -> str:
        """`sha256=<hex>`: HMAC-SHA256 of the exact body with `hmac_secret`."""
        digest = hmac.new(str(self.params.hmac_secret).encode(), body, hashlib.sha256).hexdigest()
        return f"sha256={digest}"

    def request(self, n: Notification) -> tuple[bytes, dict[str, str]]:
        """The exact body bytes and headers of the POST (also what notify-test shows)."""
        body = json.dumps(self.payload(n), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {**self.params.headers, "Idempotency-Key": " ".join(n.idempotency_key.split())}
        if self.params.authorization:
            headers["Authorization"] = str(self.params.authorization)
        if self.params.hmac_secret:
            headers[self.params.signature_header] = self.signature(body)
        return body, headers

    def preview(self, notification: Notification) -> str:
        body, headers = self.request(notification)
        head = "".join(f"{k}: {v}\n" for k, v in headers.items())
        return f"POST {self.params.format} format\n{head}\n" + json.dumps(
            json.loads(body), indent=2, ensure_ascii=False)

    async def send(self, notification: Notification) -> str:
        body, headers = self.request(notification)
        what = f"webhook {safe_host(self.params.url)}"
        response = await self.post_json(str(self.params.url), None, content=body,
                                        headers=headers, what=what)
        self.raise_for_status(response, what)
        return f"{response.status_code} {self.answer_text(response) or 'ok'}"


@hookimpl
def register_notifiers(register):
    register(WebhookNotifier)
