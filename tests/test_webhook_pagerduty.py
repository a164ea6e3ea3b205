"""The webhook and pagerduty notifiers against local servers checking the documented shapes."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from fake_services import ALERTD_WEBHOOK, ALERTMANAGER_WEBHOOK, PagerDuty, WebhookReceiver
from servers import HANG, RecordingHTTPServer, free_port

from alertd.base import PermanentError, PluginContext, RetryableError
from alertd.config.schema import ConfigError, parse_params
from alertd.default_plugins.notifiers.pagerduty import PagerDutyNotifier
from alertd.default_plugins.notifiers.webhook import WebhookNotifier
from alertd.render.renderer import SAMPLE_T0, sample_incident, sample_notification

HMAC_SECRET = "hmac-s3cr3t-value"
ROUTING_KEY = "R0UT1NGs3cr3tKEY0123456789abcdef"
PATH = "/hooks/t0k3n-in-path"


def make(cls, **params):
    p = parse_params(cls.Params, {"timezone": "UTC", **params})
    return cls(p, PluginContext("oncall", lambda: SAMPLE_T0))


def run(notifier, *notices):
    async def go():
        try:
            return [await notifier.send(n) for n in notices]
        finally:
            await notifier.close()
    return asyncio.run(go())


def receiver(schema, **kw):
    handler = WebhookReceiver(schema, **kw)
    server = RecordingHTTPServer(handler=handler).start()
    server.receiver = handler
    return server


# -- webhook ----------------------------------------------------------------------------------
def test_alertd_format_with_headers_idempotency_key_and_signature():
    with receiver(ALERTD_WEBHOOK, hmac_secret=HMAC_SECRET) as server:
        answers = run(make(WebhookNotifier, url=server.url + PATH, hmac_secret=HMAC_SECRET,
                           headers={"X-Team": "payments"}, authorization="Bearer t0k"),
                      sample_notification("firing"), sample_notification("resolved", group=True))
    assert answers == ["200 accepted", "200 accepted"] and server.receiver.errors == []
    first, second = server.requests
    assert first.path == PATH and first.headers["x-team"] == "payments"
    assert first.headers["authorization"] == "Bearer t0k"
    assert first.headers["idempotency-key"] == "sample0000000000:17:firing"
    assert first.headers["content-type"] == "application/json"
    body = server.receiver.bodies[0]
    assert body["title"] == "[FIRING] payment_success_drop provider=adyen region=eu"
    (inc,) = body["incidents"]
    assert (inc["value"], inc["expected_low"], inc["score"], inc["threshold"]) == (0.31, 0.9, 0.999, 0.5)
    assert inc["started_at"] == "2023-11-14T22:08:20.000Z" and inc["ack_command"] == "alertd incidents ack 17"
    group = server.receiver.bodies[1]
    assert group["status"] == "resolved" and len(group["incidents"]) == 3
    assert group["common_labels"] == {"region": "eu"}


def test_a_wrong_signature_is_refused_by_the_receiver():
    with receiver(ALERTD_WEBHOOK, hmac_secret="another-secret") as server:
        with pytest.raises(PermanentError, match="webhook 127.0.0.1:\\d+ answered 401") as exc:
            run(make(WebhookNotifier, url=server.url + PATH, hmac_secret=HMAC_SECRET),
                sample_notification("firing"))
    assert HMAC_SECRET not in str(exc.value) and "t0k3n" not in str(exc.value)


def test_alertmanager_format_version_4_works_with_existing_receivers():
    with receiver(ALERTMANAGER_WEBHOOK) as server:
        run(make(WebhookNotifier, url=server.url + PATH, format="alertmanager", max_alerts=2,
                 external_url="https://alertd.example.com"),
            sample_notification("firing", group=True), sample_notification("resolved"))
    assert server.receiver.errors == []
    group, resolved = server.receiver.bodies
    assert group["version"] == "4" and group["status"] == "firing" and group["truncatedAlerts"] == 1
    assert group["groupKey"] == "{}:{}" and group["groupLabels"] == {}  # a notice of no group_by
    assert group["commonLabels"] == {"alertname": "payment_success_drop", "region": "eu",
                                     "severity": "critical"}
    assert [a["labels"]["provider"] for a in group["alerts"]] == ["adyen", "paypal"]  # by labels
    assert all(a["endsAt"] == "0001-01-01T00:00:00Z" for a in group["alerts"])
    (alert,) = resolved["alerts"]
    assert resolved["status"] == alert["status"] == "resolved"
    assert alert["endsAt"] == "2023-11-14T22:13:10.000Z"


def test_label_names_are_made_valid_for_alertmanager():
    odd = dataclasses.replace(sample_incident(0), labels={"k8s-pod": "api-1", "9lives": "x", "empty": ""})
    n = make(WebhookNotifier, url="http://127.0.0.1/x", format="alertmanager")
    (alert,) = n.payload(dataclasses.replace(sample_notification("firing"), incidents=(odd,)))["alerts"]
    assert alert["labels"] == {"_9lives": "x", "alertname": "payment_success_drop",
                               "k8s_pod": "api-1", "severity": "critical"}


@pytest.mark.parametrize("status, headers, error, retry_after", [
    (500, {}, RetryableError, None),
    (429, {"Retry-After": "45"}, RetryableError, 45.0),
    (404, {}, PermanentError, None),
    (410, {}, PermanentError, None),
])
def test_webhook_answers_are_classified(status, headers, error, retry_after):
    with RecordingHTTPServer() as server:
        server.respond(status, headers, f"answer {status}")
        with pytest.raises(error) as exc:
            run(make(WebhookNotifier, url=server.url + PATH), sample_notification("firing"))
    assert type(exc.value) is error and exc.value.retry_after == retry_after
    assert f"answered {status}: answer {status}" in str(exc.value) and "t0k3n" not in str(exc.value)


def test_webhook_timeouts_and_refused_connections_are_retryable():
    with RecordingHTTPServer() as server:
        server.respond(HANG)
        with pytest.raises(RetryableError, match="timed out after 0.2s"):
            run(make(WebhookNotifier, url=server.url + PATH, timeout=0.2), sample_notification("firing"))
    with pytest.raises(RetryableError, match="unreachable") as exc:
        run(make(WebhookNotifier, url=f"http://127.0.0.1:{free_port()}{PATH}"), sample_notification("firing"))
    assert "t0k3n" not in str(exc.value)


@pytest.mark.parametrize("params, message", [
    ({"url": "ftp://x/y"}, "url must be an http:// or https:// URL"),
    ({"url": "http://x/y", "headers": {"Bad Header": "1"}}, '"Bad Header" is not an HTTP header name'),
    ({"url": "http://x/y", "authorization": "t", "headers": {"authorization": "u"}}, "set twice"),
    ({"url": "http://x/y", "format": "prometheus"}, 'did you mean "alertmanager"|valid ones'),
])
def test_webhook_params_are_checked(params, message):
    with pytest.raises(ConfigError, match=message):
        parse_params(WebhookNotifier.Params, params)


# -- pagerduty --------------------------------------------------------------------------------
@pytest.fixture
def pagerduty():
    api = PagerDuty()
    with RecordingHTTPServer(handler=api) as server:
        server.api = api
        yield server


def pd(server, **params):
    return make(PagerDutyNotifier, routing_key=ROUTING_KEY, url=server.url + "/v2/enqueue",
                source="shop-prod-1", **params)


def test_trigger_then_resolve_with_the_fingerprint_as_dedup_key(pagerduty):
    answers = run(pd(pagerduty), sample_notification("firing"), sample_notification("resolved"))
    assert pagerduty.api.errors == []
    assert answers == ["202 accepted: trigger sample0000000000", "202 accepted: resolve sample0000000000"]
    trigger, resolve = pagerduty.api.events
    assert trigger["dedup_key"] == resolve["dedup_key"] == "sample0000000000"
    payload = trigger["payload"]
    assert payload["summary"] == ("payment_success_drop provider=adyen region=eu: 0.31 (expected >= 0.9)"
                                  " · Payment success 0.31 at adyen")
    assert (payload["severity"], payload["source"], payload["class"]) == ("critical", "shop-prod-1",
                                                                         "payment_success_drop")
    assert payload["custom_details"]["ack"] == "alertd incidents ack 17"
    assert trigger["links"][0] == {"href": "https://runbooks.example.com/payments/provider-down",
                                   "text": "Runbook"}
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve",
                       "dedup_key": "sample0000000000"}


def test_groups_send_one_event_per_incident_and_acknowledgements_acknowledge(pagerduty):
    ack = dataclasses.replace(sample_notification("firing"), kind="acknowledged")
    run(pd(pagerduty, severity_map={"critical": "error"}), sample_notification("firing", group=True), ack)
    events = pagerduty.api.events
    assert [e["event_action"] for e in events] == ["trigger"] * 3 + ["acknowledge"]
    assert len({e["dedup_key"] for e in events[:3]}) == 3
    assert {e["payload"]["severity"] for e in events[:3]} == {"error"}


def test_a_title_template_becomes_the_summary(pagerduty):
    run(pd(pagerduty, title_template="{{ incidents[0].rule }} at {{ incidents[0].value }}!"),
        sample_notification("firing"))
    assert pagerduty.api.events[0]["payload"]["summary"] == "payment_success_drop at 0.31!"


def test_pagerduty_errors_are_classified_without_the_routing_key(pagerduty):
    pagerduty.respond(400, {"Content-Type": "application/json"},
                      '{"status": "invalid event", "message": "Event object is invalid"}')
    with pytest.raises(PermanentError, match="answered 400: .*invalid event") as exc:
        run(pd(pagerduty), sample_notification("firing"))
    pagerduty.respond(429, {}, '{"status": "throttle event"}')
    with pytest.raises(RetryableError, match="answered 429"):
        run(pd(pagerduty), sample_notification("firing"))
    assert ROUTING_KEY not in str(exc.value)


def test_the_routing_key_is_checked_and_never_echoed():
    with pytest.raises(ConfigError, match="routing_key must be the 32-character integration key") as err:
        parse_params(PagerDutyNotifier.Params, {"routing_key": "sh0rt-s3cr3t"})
    assert "sh0rt" not in str(err.value)
    with pytest.raises(ConfigError, match="severity_map.critical: 'urgent' is not allowed; valid ones"):
        parse_params(PagerDutyNotifier.Params, {"routing_key": ROUTING_KEY,
                                                "severity_map": {"critical": "urgent"}})
