"""The `pagerduty` notifier: PagerDuty Events API v2 (trigger, acknowledge, resolve).

One event per incident of a notification, with `dedup_key` = the incident's fingerprint, so
PagerDuty folds repeats into one alert and the resolve closes it. A firing incident is a
`trigger` (summary, source, severity, timestamp, custom details, links to the runbook and
dashboard), a resolved one a `resolve`, and an "acknowledged" notice an `acknowledge`.

The routing key (the integration key of a PagerDuty service) is a secret.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from dataclasses import dataclass, field
from typing import Literal

from alertd import hookimpl
from alertd.base import PermanentError
from alertd.config.schema import Secret
from alertd.model import Incident, Notification
from alertd.render.view import fmt_iso, status_of

from ...http_notifier import HttpNotifier, HttpParams, check_url

PDSeverity = Literal["critical", "error", "warning", "info"]
SEVERITIES = {"critical": "critical", "page": "critical", "error": "error", "high": "error",
              "warning": "warning", "medium": "warning", "info": "info", "low": "info"}
ACK_KINDS = {"acknowledged", "acknowledge", "ack"}
MAX_SUMMARY = 1024  # PagerDuty's limit


class PagerDutyNotifier(HttpNotifier):
    """Sends Events API v2 events. 202 is delivered; 429, 5xx and timeouts are retried;
    400 (an invalid event or routing key) is permanent."""

    type_name = "pagerduty"
    service = "pagerduty"

    @dataclass(frozen=True, kw_only=True)
    class Params(HttpParams):
        """`routing_key` (secret); optional `source`, `component`, `group`, severity mapping."""

        routing_key: Secret = field(repr=False)
        url: str = "https://events.pagerduty.com/v2/enqueue"
        source: str | None = None
        component: str | None = None
        group: str | None = None
        severity_map: dict[str, PDSeverity] = field(default_factory=dict)
        default_severity: PDSeverity = "warning"
        client_url: str | None = None

        def check(self):
            super().check()
            if len(str(self.routing_key)) != 32 or not str(self.routing_key).isalnum():
                raise ValueError("routing_key must be the 32-character integration key of an "
                                 "Events API v2 integration (PagerDuty service > Integrations)")
            check_url(self.url, "url")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.source = params.source or socket.gethostname()

    def secrets(self) -> list[str]:
        return [str(self.params.routing_key)]

    def severity(self, incident: Incident) -> str:
        sev = (incident.severity or "").lower()
        return self.params.severity_map.get(sev) or SEVERITIES.get(sev) or self.params.default_severity

    def action(self, incident: Incident, kind: str) -> str:
        if status_of(incident, kind) == "resolved":
            return "resolve"
        return "acknowledge" if kind in ACK_KINDS else "trigger"

    def events(self, n: Notification) -> list[dict]:
        """The Events API v2 bodies, one per incident."""
        out = []
        for inc in n.incidents:
            event = {"routing_key": str(self.params.routing_key),
                     "event_action": self.action(inc, n.kind), "dedup_key": inc.fingerprint}
            if event["event_action"] == "trigger":
                event.update(self._trigger(dataclasses.replace(n, incidents=(inc,))))
            out.append(event)
        return out

    def _trigger(self, single: Notification) -> dict:
        r = self.renderer
        view = r.view(single)
        v = view["incidents"][0]
        summary = r.render("title", view) if r.has_override("title") else \
            r.render("summary", view, inc=v)
        details = {"value": v["value"], "expected": v["expected"], "score": v["score"],
                   "threshold": v["threshold"], "since": v["since"], "labels": v["labels"],
                   "reason": v["reason"], "count": v["count"], "incident": v["id"],
                   "silence": v["silence_url"] or v["silence_command"],
                   "ack": v["url"] or v["ack_command"]}
        details.update(v["other_annotations"])
        if v["description"]:
            details["description"] = v["description"]
        payload = {"summary": summary[:MAX_SUMMARY], "source": self.source,
                   "severity": self.severity(single.incidents[0]),
                   "timestamp": fmt_iso(single.incidents[0].fired_at or single.incidents[0].started_at),
                   "class": v["rule"],
                   "custom_details": {k: val for k, val in details.items() if val not in ("", None)}}
        for key in ("component", "group"):
            value = getattr(self.params, key) or v["all_labels"].get(key)
            if value:
                payload[key] = value
        body = {"payload": payload, "client": "alertd"}
        if self.params.client_url or v["url"]:
            body["client_url"] = self.params.client_url or v["url"]
        links = [{"href": url, "text": name} for name, url in v["links"]]
        if v["url"]:
            links.append({"href": v["url"], "text": "alertd"})
        if links:
            body["links"] = links
        return body

    def preview(self, notification: Notification) -> str:
        return "\n".join(f"POST {self.params.url}\n" + json.dumps(event, indent=2, ensure_ascii=False)
                         for event in self.events(notification))

    async def send(self, notification: Notification) -> str:
        answers, code = [], 202
        for event in self.events(notification):
            what = f"pagerduty {event['event_action']} {event['dedup_key']}"
            response = await self.post_json(self.params.url, event, what=what)
            self.raise_for_status(response, what)
            try:
                status = response.json().get("status", "")
            except ValueError:
                status = ""
            if status and status != "success":
                raise PermanentError(f"{what} answered {response.status_code}: "
                                     f"{self.answer_text(response)}")
            answers.append(f"{event['event_action']} {event['dedup_key']}")
            code = response.status_code
        return f"{code} accepted: " + ", ".join(answers) if answers else "no incident to send"


@hookimpl
def register_notifiers(register):
    register(PagerDutyNotifier)
