"""The `alertmanager` notifier: pushes incidents to an Alertmanager as alerts (API v2).

With it alertd is the anomaly detector in front of a team's existing Alertmanager, which
keeps doing the routing, silencing and paging it already does. Each incident becomes an
alert with labels `alertname` (the rule), `severity` and the series labels; annotations are
the rule's (plus `summary` and `description` when the rule has none); `startsAt` is when the
incident started; a resolve sets `endsAt`.

A firing alert gets `endsAt` = now + `ends_after`, as Prometheus does with its resend: if
alertd stops sending (it is gone), the alert resolves in Alertmanager on its own. Keep
`ends_after` above the route's `repeat_interval` (repeats re-send the alert) and list one
integration per Alertmanager of an HA pair, as Prometheus sends to every one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from alertd import hookimpl
from alertd.config.schema import CredentialURL, Duration, Secret
from alertd.model import Notification

from ...http_notifier import HttpNotifier, HttpParams, check_url, safe_host
from ...render.payloads import alertmanager_alerts


class AlertmanagerNotifier(HttpNotifier):
    """POSTs alerts to `<url>/api/v2/alerts`. 200 is delivered; 5xx and timeouts are retried;
    400 (alerts Alertmanager rejects) is permanent."""

    type_name = "alertmanager"
    service = "alertmanager"
    sends_state = True  # Alertmanager keeps alerts: a late old notice must not set one back
    # posting the same alerts again is harmless, and a node back from a restart has no alerts
    # (it keeps them in memory): retry every 10 s at most, so it has the current ones soon
    max_retry_delay = 10.0

    @dataclass(frozen=True, kw_only=True)
    class Params(HttpParams):
        """`url` of the Alertmanager (e.g. http://alertmanager:9093), optional auth."""

        url: CredentialURL
        authorization: Secret | None = field(default=None, repr=False)
        headers: dict[str, str] = field(default_factory=dict)
        ends_after: Duration = Duration(24 * 3600)
        external_url: str | None = None

        def check(self):
            super().check()
            check_url(self.url, "url")
            if "@" in self.url.split("//", 1)[-1].split("/", 1)[0]:
                raise ValueError("url holds credentials; put them in authorization (e.g. "
                                 '"Basic <base64 of user:password>"), which is kept secret')
            if self.ends_after <= 0:
                raise ValueError("ends_after must be more than 0s; write a value such as 24h")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.endpoint = params.url.rstrip("/") + "/api/v2/alerts"

    def secrets(self) -> list[str]:
        return [str(self.params.authorization or "")]

    def alerts(self, n: Notification) -> list[dict]:
        """The body: one postable alert per incident."""
        summaries = {}
        for inc in n.incidents:  # the one-line summary, for rules without a summary annotation
            single = dataclasses.replace(n, incidents=(inc,))
            view = self.renderer.view(single)
            summaries[inc.fingerprint] = (self.renderer.render("title", view)
                                          if self.renderer.has_override("title")
                                          else self.renderer.render("summary", view, inc=view["incidents"][0]))
        return alertmanager_alerts(n, ends_after=float(self.params.ends_after),
                                   external_url=self.params.external_url, summaries=summaries)

    def preview(self, notification: Notification) -> str:
        return f"POST {self.endpoint}\n" + json.dumps(self.alerts(notification), indent=2,
                                                        ensure_ascii=False)

    async def send(self, notification: Notification) -> str:
        alerts = self.alerts(notification)
        headers = dict(self.params.headers)
        if self.params.authorization:
            headers["Authorization"] = str(self.params.authorization)
        what = f"alertmanager {safe_host(self.params.url)}"
        response = await self.post_json(self.endpoint, alerts, headers=headers, what=what)
        self.raise_for_status(response, what)
        return f"{response.status_code} accepted {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"


@hookimpl
def register_notifiers(register):
    register(AlertmanagerNotifier)
