"""The HTTP side in process: health, readiness, /metrics, the read API and the status page."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from configs import NEVER, config_text, rule
from prometheus_client.parser import text_string_to_metric_families

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels

CONFIG = config_text(
    http={"listen": "127.0.0.1:0"},
    rules=[rule("cpu_high", severity="critical"), rule("cpu_watch", limit=50, **{"for": "1h"})],
    receivers={"pager": [{"type": "test_record"}, {"type": "test_record", "fail_times": 1}]},
    routes={"receiver": "pager", "group_by": ["..."], "group_wait": "0s", "group_interval": "1s"})

SHOP = config_text(
    http={"listen": "127.0.0.1:0"},
    sources={"shop": {"type": "shop_sim", "cron": NEVER, "speed": 60, "step": "2m", "seed": 7}},
    rules=[{"name": "payment_success_drop", "source": "shop", "series": 'payment_success_ratio{provider=~".+"}',
            "detector": {"type": "threshold", "below": 0.9, "clear_below": 0.95}, "for": "4m", "severity": "critical",
            "annotations": {"summary": "Payment success {{ value }} at {{ labels.provider }}"}},
           {"name": "orders_anomaly", "source": "shop", "series": "orders_per_minute",
            "detector": {"type": "zscore", "window": 30, "threshold": 6}}],
    receivers={"pager": [{"type": "test_record"}]},
    routes={"receiver": "pager", "group_by": ["..."], "group_wait": "0s", "group_interval": "1s"})


def cpu(host, ts, value):
    return Sample("cpu", make_labels({"host": host}), ts, value)


def serve(write_config, registry, clock, tmp_path, text, scenario):
    """Start a daemon with its HTTP server in this loop, run `scenario(daemon, client)`, stop."""
    config = load_config(write_config(text), registry, environ={})

    async def main():
        daemon = Daemon(config, registry, store_path=tmp_path / "api.db", clock=clock)
        await daemon.open_http()
        await daemon.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web.port}") as client:
                return await scenario(daemon, client)
        finally:
            await daemon.drain()
            await daemon.close()

    return asyncio.run(main())


def families(text: str) -> dict:
    """{metric family name: {(sample name, labels tuple): value}} from the exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return out


def test_health_readiness_and_metrics(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        health = await client.get("/healthz")
        not_ready = await client.get("/readyz")
        t = clock.now()
        daemon.sources["app"].pending = [cpu("a", t, 95), cpu("b", t, 60), "junk"]
        await daemon.poll("app")
        await daemon.pass_once()
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
        openmetrics = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        return health, not_ready, ready, metrics, openmetrics

    health, not_ready, ready, metrics, openmetrics = serve(write_config, registry, clock, tmp_path,
                                                           CONFIG, scenario)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["first_tick_done"] is False
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    m = families(metrics.text)
    assert m["alertd_source_polls"][("alertd_source_polls_total", (("source", "app"),))] == 1
    assert m["alertd_source_samples"][("alertd_source_samples_total", (("source", "app"),))] == 2
    assert m["alertd_samples_skipped"][("alertd_samples_skipped_total",
                                        (("reason", "not_a_sample"), ("source", "app")))] == 1
    incidents = m["alertd_incidents"]
    assert incidents[("alertd_incidents", (("severity", "critical"), ("state", "firing")))] == 1
    assert incidents[("alertd_incidents", (("severity", "warning"), ("state", "pending")))] == 2
    assert incidents[("alertd_incidents", (("severity", "critical"), ("state", "pending")))] == 0
    sent = m["alertd_notifications_sent"]
    assert sent[("alertd_notifications_sent_total", (("notifier", "test_record"), ("receiver", "pager")))] == 1
    failed = m["alertd_notifications_failed"]
    assert failed[("alertd_notifications_failed_total",
                   (("notifier", "test_record"), ("reason", "retryable"), ("receiver", "pager")))] == 1
    assert m["alertd_outbox_pending"][("alertd_outbox_pending", ())] == 1  # the retry
    assert m["alertd_tick_seconds"][("alertd_tick_seconds_count", (("source", "app"),))] == 1
    assert ("alertd_detector_seconds_count", (("rule", "cpu_high"),)) in m["alertd_detector_seconds"]
    assert m["alertd_config_last_reload_successful"][("alertd_config_last_reload_successful", ())] == 1
    assert m["alertd_source_last_success_timestamp_seconds"][
        ("alertd_source_last_success_timestamp_seconds", (("source", "app"),))] == clock.now()
    assert "alertd_tick_lag_seconds" in m and "alertd_config_reloads" in m
    assert "process_resident_memory_bytes" in m and "alertd_build_info" in m


def test_slow_connections_cannot_lock_out_health_metrics_or_the_api(write_config, registry, clock, tmp_path):
    """The daemon's own port, as configured (64 slots): 100 connections that send half a
    request head and then nothing (a slowloris) were enough to lock out /healthz, /metrics
    and the API until their idle timeout; now each newcomer takes the slot of the one that
    has waited longest."""
    async def scenario(daemon, client):
        slow = []
        for i in range(100):
            reader, writer = await asyncio.open_connection("127.0.0.1", daemon.web.port)
            writer.write(b"GET /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: %d\r\n" % i)
            slow.append(writer)
        for _ in range(500):  # until the server has taken them all in (no timer is waited for)
            if daemon.web.slots.shed + len(daemon.web.slots) >= 100:
                break
            await asyncio.sleep(0.01)
        answers = {path: (await client.get(path, timeout=5)).status_code
                   for path in ("/healthz", "/metrics", "/api/v1/incidents", "/readyz")}
        held, shed = len(daemon.web.slots), daemon.web.slots.shed
        for writer in slow:
            writer.close()
        return answers, held, shed

    answers, held, shed = serve(write_config, registry, clock, tmp_path, CONFIG, scenario)
    assert answers == {"/healthz": 200, "/metrics": 200, "/api/v1/incidents": 200, "/readyz": 503}  # no tick yet
    assert held <= 64 and shed >= 36


def test_the_host_check_knows_external_url_and_allowed_hosts(write_config, registry, clock, tmp_path):
    """People reach the pages at external_url, perhaps through a proxy that passes their Host
    on and their browser's Origin with it: that name needs no allowed_hosts entry; any
    other name does (a guard against DNS rebinding)."""
    text = config_text(http={"listen": "127.0.0.1:0", "external_url": "https://alertd.example.com/alertd/",
                             "allowed_hosts": ["*.proxy.internal"]},
                       rules=[rule("cpu_high")], receivers={"pager": [{"type": "test_record"}]},
                       routes={"receiver": "pager"})

    async def scenario(daemon, client):
        hosts = {name: (await client.get("/healthz", headers={"Host": name})).status_code
                 for name in ("alertd.example.com", "alertd.example.com:443", "a.proxy.internal:9464",
                              "evil.example", "alertd.example.com.evil.example")}
        proxied = await client.get("/api/v1/incidents", headers={"Host": "alertd.example.com",
                                                                 "Origin": "https://alertd.example.com"})
        cross = await client.post("/api/v1/silences", json={}, headers={"Origin": "https://evil.example"})
        return hosts, proxied.status_code, cross

    hosts, proxied, cross = serve(write_config, registry, clock, tmp_path, text, scenario)
    assert hosts == {"alertd.example.com": 200, "alertd.example.com:443": 200, "a.proxy.internal:9464": 200,
                     "evil.example": 403, "alertd.example.com.evil.example": 403}
    assert proxied == 200
    assert cross.status_code == 403 and "may not change anything here" in cross.json()["error"]


def test_incidents_list_show_and_errors(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        t = clock.now()
        daemon.sources["app"].pending = [cpu("a", t, 95), cpu("b", t, 60)]
        await daemon.poll("app")
        await daemon.pass_once()
        daemon.sources["app"].pending = [cpu("a", t + 5, 10), cpu("b", t + 5, 60)]
        await daemon.poll("app")
        answers = {}
        for name, path in [("open", "/api/v1/incidents"), ("all", "/api/v1/incidents?state=all"),
                           ("resolved", "/api/v1/incidents?state=resolved&rule=cpu_high"),
                           ("limit", "/api/v1/incidents?state=all&limit=1"),
                           ("bad_state", "/api/v1/incidents?state=sleeping"),
                           ("bad_limit", "/api/v1/incidents?limit=-3"),
                           ("one", "/api/v1/incidents/1"), ("missing", "/api/v1/incidents/999"),
                           ("nowhere", "/api/v2/things"), ("status", "/api/v1/status")]:
            answers[name] = await client.get(path)
        answers["post"] = await client.post("/api/v1/incidents")
        answers["head"] = await client.head("/healthz")
        return answers

    a = serve(write_config, registry, clock, tmp_path, CONFIG, scenario)
    assert [(i["rule"], i["labels"]["host"]) for i in a["open"].json()["incidents"]] == [("cpu_watch", "b")]
    assert len(a["all"].json()["incidents"]) == 3 and len(a["limit"].json()["incidents"]) == 1
    (resolved,) = a["resolved"].json()["incidents"]
    assert resolved["rule"] == "cpu_high" and resolved["state"] == "resolved"
    assert a["bad_state"].status_code == 400
    assert a["bad_state"].json()["error"] == 'state "sleeping" is not one of open, all, pending, firing, resolved'
    assert a["bad_limit"].status_code == 400
    one = a["one"].json()  # the shape of `alertd incidents show --json`
    assert one["incident"]["id"] == 1 and one["incident"]["rule"] == "cpu_high"
    assert [e["event"] for e in one["history"]][:2] == ["pending", "fired"]
    assert "resolved" in [e["event"] for e in one["history"]]
    firing = [(n["kind"], n["receiver"], n["integration"]) for n in one["notifications"] if n["kind"] == "firing"]
    assert sorted(firing) == [("firing", "pager", 0), ("firing", "pager", 1)]
    assert "payload" not in one["notifications"][0] and one["groups"] is not None
    assert a["missing"].status_code == 404 and "no incident" in a["missing"].json()["error"]
    assert a["nowhere"].status_code == 404
    assert a["post"].status_code == 405 and a["post"].headers["allow"] == "GET"
    assert a["head"].status_code == 200 and a["head"].content == b""
    status = a["status"].json()
    assert status["incidents"] == {"pending": 1, "firing": 0} and status["ready"] is True
    assert status["sources"]["app"]["consecutive_errors"] == 0 and status["api_writes"] is False


def test_pages_show_the_shop_demo_incident_with_its_chart(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        for _ in range(16):  # 16 polls = 32 shop minutes: the payment outage runs 20m..35m
            clock.advance(2)
            await daemon.poll("shop")
        await daemon.pass_once()
        return (await client.get("/"), await client.get("/rules/payment_success_drop"),
                [(i.rule, i.state) for i in daemon.engine.tracker.open.values()])

    page, rule_page, open_incidents = serve(write_config, registry, clock, tmp_path, SHOP, scenario)
    assert ("payment_success_drop", "firing") in open_incidents
    html = page.text
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    row = re.search(r'<tr class="firing">.*?</tr>', html, re.S).group(0)
    assert "payment_success_drop" in row and "provider=stripe" in row
    assert re.search(r"Payment success 0\.\d+ at stripe", row)  # the rendered summary
    cards = rule_page.text[rule_page.text.index('<div class="series-grid">'):]
    assert cards.count("<svg") == 3  # stripe, adyen, paypal
    stripe = cards[cards.index("provider=stripe"):]
    stripe = stripe[:stripe.index("</svg>")]
    assert stripe.count('fill="#dc2626"') >= 3  # the detections, as red dots
    assert '<rect' in stripe and "incident firing" in stripe  # the incident band
    assert "<script" not in html


def test_pages_escape_labels(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        t = clock.now()
        daemon.sources["app"].pending = [cpu("<script>alert(1)</script>", t, 95)]
        await daemon.poll("app")
        return await client.get("/")

    page = serve(write_config, registry, clock, tmp_path, CONFIG, scenario)
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


@pytest.mark.parametrize("path", ["/", "/api/v1/status"])
def test_pages_answer_while_nothing_was_polled(write_config, registry, clock, tmp_path, path):
    async def scenario(daemon, client):
        return await client.get(path)

    assert serve(write_config, registry, clock, tmp_path, CONFIG, scenario).status_code == 200


TOKEN = "s3cret-api-token-0123456789"


def test_writes_need_the_bearer_token_and_say_why_not(write_config, registry, clock, tmp_path, capsys):
    text = CONFIG.replace("http: {listen: 127.0.0.1:0}", f"http: {{listen: 127.0.0.1:0, token: {TOKEN}}}")
    assert TOKEN in text

    async def scenario(daemon, client):
        answers = {"missing": await client.post("/api/v1/reload"),
                   "basic": await client.post("/api/v1/reload", headers={"Authorization": "Basic dXNlcjpwdw=="}),
                   "wrong": await client.post("/api/v1/reload", headers={"Authorization": "Bearer nope"}),
                   "empty": await client.post("/api/v1/reload", headers={"Authorization": "Bearer"})}
        untouched = (daemon.last_reload, daemon.metrics.reloads.labels("success")._value.get())
        good = {"Authorization": f"Bearer {TOKEN}"}
        path = daemon.config.path
        original = open(path).read()
        with open(path, "w") as f:
            f.write(original.replace("limit: 50", "limit: fifty"))
        answers["bad_file"] = await client.post("/api/v1/reload", headers=good)
        with open(path, "w") as f:
            f.write(original.replace("limit: 50", "limit: 55"))
        answers["ok"] = await client.post("/api/v1/reload", headers=good)
        return answers, untouched

    answers, untouched = serve(write_config, registry, clock, tmp_path, text, scenario)
    for name in ("missing", "basic", "wrong", "empty"):
        assert answers[name].status_code == 401, name
        assert answers[name].headers["www-authenticate"].startswith('Bearer realm="alertd"')
    assert answers["missing"].json()["error"] == ("this call needs a token: send the header 'Authorization: "
                                                 "Bearer <token>' with the http.token of alertd's config")
    assert answers["basic"].json()["error"] == "the Authorization header must be 'Bearer <token>', not 'Basic ...'"
    assert answers["wrong"].json()["error"] == "the bearer token is not valid; use the http.token of alertd's config"
    assert 'error="invalid_token"' in answers["wrong"].headers["www-authenticate"]
    assert untouched == (None, 0)  # nothing happened for the refused calls
    bad = answers["bad_file"]
    assert bad.status_code == 422 and bad.json()["ok"] is False
    assert bad.json()["problems"][0].endswith("rules[cpu_watch].detector.limit: expected a number, got 'fifty'")
    assert answers["ok"].status_code == 200 and answers["ok"].json()["changes"] == {"rules_changed": ["cpu_watch"]}
    out = capsys.readouterr().out
    # one line per reason and minute (missing, not_bearer, wrong_token: "empty" is a wrong token)
    assert out.count("api_unauthorized") == 3 and TOKEN not in out


def test_writes_are_disabled_without_a_token(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        return await client.post("/api/v1/reload", headers={"Authorization": f"Bearer {TOKEN}"}), daemon.last_reload

    answer, last_reload = serve(write_config, registry, clock, tmp_path, CONFIG, scenario)
    assert answer.status_code == 403 and last_reload is None
    assert answer.json()["error"] == ("changes through the API are disabled because no token is configured; "
                                      "set http.token (or the ALERTD_API_TOKEN variable) and reload alertd")
