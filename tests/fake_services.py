"""Local stand-ins for Slack, PagerDuty and webhook receivers that check what they get.

Each is a handler for `servers.RecordingHTTPServer(handler=...)`: it validates the request
body against the JSON schema of the service's documented format (written down here from
the services' documentation) and answers as the service does, including its errors. A
payload that does not match is refused the way the real service refuses it, so a test that
passes has sent a payload the service would accept.

- Slack: Block Kit messages (header, section, context, divider; text limits, 50 blocks) for
  incoming webhooks and `chat.postMessage` (auth, channel, threads).
- PagerDuty: Events API v2 (`/v2/enqueue`): trigger/acknowledge/resolve with their fields.
- Alertmanager's webhook format version 4 and alertd's own webhook format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading

import jsonschema

JSON = {"Content-Type": "application/json"}

# -- Slack Block Kit (https://api.slack.com/reference/block-kit) ------------------------------
_TEXT = {"type": "object", "required": ["type", "text"], "additionalProperties": False,
         "properties": {"type": {"enum": ["plain_text", "mrkdwn"]},
                        "text": {"type": "string", "minLength": 1, "maxLength": 3000},
                        "emoji": {"type": "boolean"}, "verbatim": {"type": "boolean"}}}
_PLAIN = {**_TEXT, "properties": {**_TEXT["properties"], "type": {"const": "plain_text"},
                                  "text": {"type": "string", "minLength": 1, "maxLength": 150}}}
_BLOCK_ID = {"type": "string", "maxLength": 255}
_HEADER = {"type": "object", "required": ["type", "text"], "additionalProperties": False,
           "properties": {"type": {"const": "header"}, "text": _PLAIN, "block_id": _BLOCK_ID}}
_SECTION = {"type": "object", "required": ["type"], "additionalProperties": False,
            "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
            "properties": {"type": {"const": "section"}, "text": _TEXT, "block_id": _BLOCK_ID,
                           "fields": {"type": "array", "maxItems": 10, "items": _TEXT}}}
_CONTEXT = {"type": "object", "required": ["type", "elements"], "additionalProperties": False,
            "properties": {"type": {"const": "context"}, "block_id": _BLOCK_ID,
                           "elements": {"type": "array", "minItems": 1, "maxItems": 10, "items": _TEXT}}}
_DIVIDER = {"type": "object", "required": ["type"], "additionalProperties": False,
            "properties": {"type": {"const": "divider"}, "block_id": _BLOCK_ID}}
SLACK_MESSAGE = {
    "type": "object", "additionalProperties": False,
    "anyOf": [{"required": ["text"]}, {"required": ["blocks"]}],
    "properties": {
        "text": {"type": "string", "maxLength": 40000},
        "blocks": {"type": "array", "minItems": 1, "maxItems": 50,
                   "items": {"oneOf": [_HEADER, _SECTION, _CONTEXT, _DIVIDER]}},
        "channel": {"type": "string", "minLength": 1}, "username": {"type": "string"},
        "icon_emoji": {"type": "string"}, "icon_url": {"type": "string"},
        "thread_ts": {"type": "string", "pattern": r"^\d+\.\d+$"},
        "reply_broadcast": {"type": "boolean"}, "mrkdwn": {"type": "boolean"},
        "unfurl_links": {"type": "boolean"}, "unfurl_media": {"type": "boolean"},
    },
}
SLACK_POST_MESSAGE = {**SLACK_MESSAGE, "required": ["channel"]}

# -- PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/) ---------
_PD_PAYLOAD = {
    "type": "object", "required": ["summary", "source", "severity"], "additionalProperties": False,
    "properties": {
        "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
        "source": {"type": "string", "minLength": 1},
        "severity": {"enum": ["critical", "error", "warning", "info"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "component": {"type": "string"}, "group": {"type": "string"}, "class": {"type": "string"},
        "custom_details": {"type": "object"},
    },
}
PAGERDUTY_EVENT = {
    "type": "object", "required": ["routing_key", "event_action"], "additionalProperties": False,
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "payload": _PD_PAYLOAD, "client": {"type": "string"}, "client_url": {"type": "string"},
        "images": {"type": "array", "items": {"type": "object", "required": ["src"]}},
        "links": {"type": "array", "items": {
            "type": "object", "required": ["href"], "additionalProperties": False,
            "properties": {"href": {"type": "string"}, "text": {"type": "string"}}}},
    },
    "allOf": [
        {"if": {"properties": {"event_action": {"const": "trigger"}}},
         "then": {"required": ["payload"]}},
        {"if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}},
         "then": {"required": ["dedup_key"]}},
    ],
}

# -- Alertmanager webhook, version 4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_RFC3339 = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}
ALERTMANAGER_WEBHOOK = {
    "type": "object", "additionalProperties": False,
    "required": ["version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                 "commonLabels", "commonAnnotations", "externalURL", "alerts"],
    "properties": {
        "version": {"const": "4"}, "groupKey": {"type": "string"},
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "status": {"enum": ["firing", "resolved"]}, "receiver": {"type": "string"},
        "groupLabels": _STR_MAP, "commonLabels": _STR_MAP, "commonAnnotations": _STR_MAP,
        "externalURL": {"type": "string"},
        "alerts": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                         "fingerprint"],
            "properties": {
                "status": {"enum": ["firing", "resolved"]},
                "labels": {**_STR_MAP, "required": ["alertname"],
                           "propertyNames": {"pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
                "annotations": _STR_MAP, "startsAt": _RFC3339, "endsAt": _RFC3339,
                "generatorURL": {"type": "string"}, "fingerprint": {"type": "string"}}}},
    },
}

# -- alertd's own webhook format (docs/notifications.md) ------------------------------------
_NUM = {"type": ["number", "null"]}
_TIME = {"anyOf": [_RFC3339, {"type": "null"}]}
ALERTD_WEBHOOK = {
    "type": "object", "additionalProperties": False,
    "required": ["version", "receiver", "kind", "status", "idempotency_key", "created_at",
                 "title", "text", "common_labels", "silence_command", "incidents"],
    "properties": {
        "version": {"const": "1"}, "receiver": {"type": "string"}, "kind": {"type": "string"},
        "status": {"type": "string"}, "idempotency_key": {"type": "string", "minLength": 1},
        "created_at": _RFC3339, "title": {"type": "string", "minLength": 1},
        "text": {"type": "string"}, "common_labels": _STR_MAP,
        "silence_command": {"type": ["string", "null"]}, "silence_url": {"type": ["string", "null"]},
        "truncated": {"type": "integer", "minimum": 1},
        "incidents": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "fingerprint", "rule", "state", "status", "severity", "labels",
                         "annotations", "started_at", "fired_at", "resolved_at", "resolution", "value",
                         "expected_low", "expected_high", "score", "peak_score", "threshold",
                         "reason", "count", "silence_command", "ack_command"],
            "properties": {
                "id": {"type": ["integer", "null"]}, "fingerprint": {"type": "string"},
                "rule": {"type": "string"}, "state": {"type": "string"},
                "status": {"type": "string"}, "severity": {"type": "string"},
                "labels": _STR_MAP, "annotations": _STR_MAP, "started_at": _RFC3339,
                "fired_at": _TIME, "resolved_at": _TIME, "value": _NUM, "expected_low": _NUM,
                "resolution": {"enum": [None, "cleared", "series_missing", "forgotten", "manual", "no_data",
                                        "crossed", "delivered again"]},
                "expected_high": _NUM, "score": _NUM, "peak_score": _NUM, "threshold": _NUM,
                "reason": {"type": "string"}, "count": {"type": "integer"},
                "silence_command": {"type": ["string", "null"]},
                "ack_command": {"type": ["string", "null"]}, "url": {"type": ["string", "null"]}}}},
    },
}


def problems(schema: dict, document) -> list[str]:
    """Every way `document` breaks `schema`, as `path: message` strings (empty: valid)."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in validator.iter_errors(document)]


def _json(status: int, body: dict, headers: dict | None = None):
    return status, {**JSON, **(headers or {})}, json.dumps(body)


class SlackWebhook:
    """An incoming webhook: 200 "ok", or 400 "invalid_blocks" / "no_text" like Slack."""

    def __init__(self):
        self.errors: list[str] = []

    def __call__(self, request):
        try:
            body = request.json()
        except ValueError:
            return 400, {}, "invalid_payload"
        found = problems(SLACK_MESSAGE, body)
        if found:
            self.errors += found
            return 400, {}, "invalid_blocks"
        return 200, {}, "ok"


class SlackAPI:
    """The Web API's `chat.postMessage`: bearer token, known channels, threads, errors."""

    def __init__(self, token: str, channels=("#alerts",)):
        self.token, self.channels = token, {c: f"C{i:08d}" for i, c in enumerate(channels, 1)}
        self.messages: list[dict] = []  # accepted message bodies, with "ts" and "channel_id"
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, request):
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _json(200, {"ok": False, "error": "invalid_auth"})
        if request.path != "/api/chat.postMessage":
            return _json(404, {"ok": False, "error": "unknown_method"})
        body = request.json()
        found = problems(SLACK_POST_MESSAGE, body)
        if found:
            self.errors += found
            return _json(200, {"ok": False, "error": "invalid_blocks", "errors": found})
        ids = set(self.channels.values())
        channel = body["channel"] if body["channel"] in ids else self.channels.get(body["channel"])
        if channel is None:
            return _json(200, {"ok": False, "error": "channel_not_found"})
        with self._lock:
            if "thread_ts" in body and not any(m["ts"] == body["thread_ts"] for m in self.messages):
                return _json(200, {"ok": False, "error": "thread_not_found"})
            ts = f"{1700000000 + len(self.messages)}.{len(self.messages) + 1:06d}"
            self.messages.append({**body, "ts": ts, "channel_id": channel})
        return _json(200, {"ok": True, "channel": channel, "ts": ts,
                           "message": {"type": "message", "text": body.get("text", ""), "ts": ts}})


class PagerDuty:
    """Events API v2 `/v2/enqueue`: 202 with the dedup key, or 400 "invalid event"."""

    def __init__(self):
        self.events: list[dict] = []
        self.errors: list[str] = []

    def __call__(self, request):
        if request.path != "/v2/enqueue":
            return _json(404, {"status": "not found"})
        try:
            event = request.json()
        except ValueError:
            return _json(400, {"status": "invalid event", "message": "Event object is invalid",
                               "errors": ["Malformed JSON"]})
        found = problems(PAGERDUTY_EVENT, event)
        if found:
            self.errors += found
            return _json(400, {"status": "invalid event", "message": "Event object is invalid",
                               "errors": found})
        self.events.append(event)
        return _json(202, {"status": "success", "message": "Event processed",
                           "dedup_key": event.get("dedup_key", "generated")})


class WebhookReceiver:
    """A receiver of alertd's or Alertmanager's webhook format, checking an HMAC if given."""

    def __init__(self, schema: dict, hmac_secret: str | None = None,
                 signature_header: str = "x-alertd-signature"):
        self.schema, self.secret, self.header = schema, hmac_secret, signature_header.lower()
        self.bodies: list[dict] = []
        self.errors: list[str] = []

    def __call__(self, request):
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret.encode(), request.body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get(self.header, ""), expected):
                self.errors.append("bad signature")
                return 401, {}, "bad signature"
        body = request.json()
        found = problems(self.schema, body)
        if found:
            self.errors += found
            return 422, {}, "; ".join(found)[:500]
        self.bodies.append(body)
        return 200, {}, "accepted"
