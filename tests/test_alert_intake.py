"""Alerts posted to alertd's Alertmanager API (/api/v2/alerts, /api/v1/alerts), in process
with a fake clock: they become incidents, resolve when endsAt passes, and bad bodies get
Alertmanager's status codes with one sentence while what was accepted stays."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import sys

import httpx
import pytest
from configs import config_text

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.engine.intake import am_fingerprint
from alertd.render.view import fmt_iso

TOKEN = "posted-alerts-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = config_text(
    http={"listen": "127.0.0.1:0", "token": TOKEN,
          "basic_auth": {"username": "prometheus", "password": "basic-password-0123456789"}},
    rules=[], posted_alerts={"resolve_timeout": "5m", "flapping": False},
    receivers={"rec": [{"type": "test_record"}], "db": [{"type": "test_record"}]},
    routes={"receiver": "rec", "group_by": ["alertname"], "group_wait": "30s", "group_interval": "1m",
            "repeat_interval": "1h", "routes": [{"matchers": ['service="db"'], "receiver": "db"}]})


def run(write_config, registry, clock, tmp_path, scenario, text=CONFIG, store="posted.db"):
    config = load_config(write_config(text), registry, environ={})

    async def main():
        daemon = Daemon(config, registry, store_path=tmp_path / store, clock=clock)
        await daemon.open_http()
        await daemon.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web.port}", timeout=60) as client:
                return await scenario(daemon, client)
        finally:
            await daemon.drain()

    global SENT
    SENT = sent_list(registry)
    SENT.clear()
    return asyncio.run(main())


def sent_list(registry) -> list:
    """What the test_record notifier delivered (its module's SENT, as the registry loaded it)."""
    return sys.modules[registry.get("notifier", "test_record").__module__].SENT


def alert(clock, name="HighCPU", starts=0.0, ends=None, **labels):
    body = {"labels": {"alertname": name, **labels}, "annotations": {"summary": f"{name} is up"},
            "startsAt": fmt_iso(clock.now() + starts), "generatorURL": "http://prometheus:9090/graph?g0.expr=up"}
    if ends is not None:
        body["endsAt"] = fmt_iso(clock.now() + ends)
    return body


SENT: list = []


def sent():
    return [(n.receiver, n.kind, sorted(i.labels.get("instance", "") for i in n.incidents)) for n in SENT]


def test_a_posted_alert_is_an_incident_notified_and_resolved_when_endsat_passes(
        write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        r = await client.post("/api/v2/alerts", json=[alert(clock, ends=120, instance="a")], headers=AUTH)
        assert (r.status_code, r.text) == (200, "")
        (incident,) = daemon.store.incidents.open()
        assert incident.cause == "posted" and incident.rule == "HighCPU" and incident.state == "firing"
        assert incident.fingerprint == am_fingerprint({"alertname": "HighCPU", "instance": "a"})
        assert incident.labels == {"alertname": "HighCPU", "instance": "a"}
        assert incident.ends_at == pytest.approx(clock.now() + 120)
        clock.advance(30)  # group_wait
        await daemon.pass_once()
        assert sent() == [("rec", "firing", ["a"])]
        (listed,) = (await client.get("/api/v2/alerts")).json()
        assert listed["labels"] == {"alertname": "HighCPU", "instance": "a"}
        assert listed["status"] == {"inhibitedBy": [], "silencedBy": [], "state": "active"}
        assert listed["receivers"] == [{"name": "rec"}] and listed["fingerprint"] == incident.fingerprint
        assert listed["generatorURL"] == "http://prometheus:9090/graph?g0.expr=up"
        clock.advance(60)  # posted again: its end moves on
        await client.post("/api/v2/alerts", json=[alert(clock, starts=-90, ends=120, instance="a")], headers=AUTH)
        clock.advance(119)
        await daemon.pass_once()
        assert daemon.store.incidents.open() != []
        clock.advance(1)  # endsAt passed without a new post: resolved (at its endsAt)
        await daemon.pass_once()
        assert daemon.store.incidents.open() == []
        done = daemon.store.incidents.get(incident.id)
        assert done.state == "resolved" and done.resolved_at == pytest.approx(clock.now())
        clock.advance(60)  # the group's next tick (a minute after the flush at 209 s)
        await daemon.pass_once()
        assert sent()[-1] == ("rec", "resolved", ["a"]), [(n.kind, n.created_at - clock.now(), n.title) for n in SENT]
    run(write_config, registry, clock, tmp_path, scenario)


def test_resolved_posts_no_endsat_and_old_alerts(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        await client.post("/api/v2/alerts", json=[alert(clock, instance="a"),  # no endsAt: resolve_timeout
                                                  alert(clock, name="Old", starts=-600, instance="b")], headers=AUTH)
        by_rule = {i.rule: i for i in daemon.store.incidents.open()}
        assert by_rule["HighCPU"].ends_at == pytest.approx(clock.now() + 300)
        assert by_rule["Old"].started_at == pytest.approx(clock.now() - 600)
        await daemon.pass_once()  # older than group_wait: its new group flushes at once
        assert sent() == [("rec", "firing", ["b"])]
        clock.advance(5)
        resolved = alert(clock, instance="a", starts=-5, ends=-2)  # resolved two seconds ago
        await client.post("/api/v2/alerts", json=[resolved], headers=AUTH)
        done = daemon.store.incidents.get(by_rule["HighCPU"].id)
        assert done.state == "resolved" and done.resolved_at == pytest.approx(clock.now() - 2)
        clock.advance(25)
        await daemon.pass_once()  # fired and resolved inside group_wait: the receiver never knew
        assert sent() == [("rec", "firing", ["b"])]
    run(write_config, registry, clock, tmp_path, scenario)


@pytest.mark.parametrize("body, status, shape, words", [
    (b"not json", 400, dict, "not valid JSON"),
    (b'{"labels": {}}', 400, dict, "must be a JSON list of alerts, not dict"),
    (b'[{"labels": "x"}]', 400, dict, "alert 0.labels must be an object"),
    (b'[{"labels": {"a": 1}}]', 400, dict, "alert 0.labels.a must be a string, not int"),
    (b'[{"labels": {"a": "b"}, "startsAt": 5}]', 400, dict, "alert 0.startsAt must be a time string"),
    (b'[{"labels": {"a": "b"}, "startsAt": "nope"}]', 400, dict, "is not an RFC 3339 time"),
    (b'[{"annotations": {"a": "b"}}]', 422, dict, "alert 0 has no labels"),
    (b'[{"labels": {"a": "b"}, "generatorURL": "not a url"}]', 422, dict, "is not a URI"),
    (b'[{"labels": {}}]', 400, str, "it has no labels"),
    (b'[{"labels": {"1bad": "x"}}]', 400, str, 'the label name "1bad" is not valid'),
    (b'[{"labels": {"a": "b"}, "startsAt": "2025-01-02T00:00:00Z", "endsAt": "2025-01-01T00:00:00Z"}]', 400, str,
     "its endsAt is before its startsAt"),
])
def test_bad_bodies_get_alertmanagers_status_and_one_sentence(write_config, registry, clock, tmp_path,
                                                              body, status, shape, words):
    async def scenario(daemon, client):
        r = await client.post("/api/v2/alerts", content=body, headers=AUTH)
        assert r.status_code == status
        payload = r.json()
        assert isinstance(payload, shape)
        message = payload if shape is str else payload["message"]
        assert words in message and message.count(". ") == 0 and "\n" not in message
        assert daemon.store.incidents.open() == []  # (nothing of a refused body is kept)
        v1 = await client.post("/api/v1/alerts", content=body, headers=AUTH)
        if "URI" in words:  # the v1 API never checked generatorURL
            assert v1.json() == {"status": "success"}
        else:
            assert v1.status_code == 400 and v1.json()["status"] == "error"
        assert (await client.get("/healthz")).status_code == 200  # the daemon goes on
    run(write_config, registry, clock, tmp_path, scenario)


def test_valid_alerts_of_a_partly_bad_post_are_kept(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        body = [alert(clock, instance="a"), {"labels": {"1x": "y"}}, alert(clock, instance="b")]
        r = await client.post("/api/v2/alerts", json=body, headers=AUTH)
        assert r.status_code == 400
        assert r.json() == ('alert 1 {1x="y"} was refused: the label name "1x" is not valid; use letters, '
                            "digits and underscores, not starting with a digit; the other 2 alerts were accepted")
        assert sorted(i.labels["instance"] for i in daemon.store.incidents.open()) == ["a", "b"]
        v1 = await client.post("/api/v1/alerts", json=[alert(clock, instance="c")], headers=AUTH)
        assert v1.json() == {"status": "success"} and len(daemon.store.incidents.open()) == 3
    run(write_config, registry, clock, tmp_path, scenario)


def test_ten_thousand_alerts_in_one_post_are_taken_without_stalling_the_loop(
        write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        body = [alert(clock, name="Big", i=str(i)) for i in range(10_000)]
        seen = []

        async def meanwhile():  # runs while the post is being committed, between its batches
            while not seen or seen[-1] < 10_000:
                seen.append(daemon.store.incidents.count_open())
                await asyncio.sleep(0)

        watcher = asyncio.create_task(meanwhile())
        r = await client.post("/api/v2/alerts", content=json.dumps(body).encode(), headers=AUTH)
        await asyncio.wait_for(watcher, 30)
        assert r.status_code == 200 and daemon.store.incidents.count_open() == 10_000
        assert any(0 < n < 10_000 for n in seen)  # the loop ran between two batches
    run(write_config, registry, clock, tmp_path, scenario)


def test_a_failing_store_keeps_the_batches_already_committed(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        real = daemon.intake.receive
        calls = []

        def receive(alerts):
            calls.append(len(alerts))
            if len(calls) == 2:
                raise __import__("sqlite3").OperationalError("disk I/O error")
            return real(alerts)
        daemon.intake.receive = receive
        r = await client.post("/api/v2/alerts", json=[alert(clock, name="B", i=str(i)) for i in range(700)],
                              headers=AUTH)
        assert r.status_code == 500
        assert r.json()["error"] == ("500 of 700 alerts were accepted, the rest were not because the store "
                                     "failed (see the daemon's log); post them again")
        assert daemon.store.incidents.count_open() == 500
    run(write_config, registry, clock, tmp_path, scenario)


def test_posting_needs_the_token_or_basic_auth(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        body = [alert(clock, instance="a")]
        assert (await client.post("/api/v2/alerts", json=body)).status_code == 401
        wrong = base64.b64encode(b"prometheus:nope").decode()
        assert (await client.post("/api/v2/alerts", json=body, headers={"Authorization": f"Basic {wrong}"})
                ).status_code == 401
        basic = base64.b64encode(b"prometheus:basic-password-0123456789").decode()
        assert (await client.post("/api/v2/alerts", json=body, headers={"Authorization": f"Basic {basic}"})
                ).status_code == 200
        assert len(daemon.store.incidents.open()) == 1
    run(write_config, registry, clock, tmp_path, scenario)


def test_silences_ack_and_routes_apply_to_posted_alerts(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        await client.post("/api/v2/alerts", json=[alert(clock, instance="a", service="db"),
                                                  alert(clock, instance="b")], headers=AUTH)
        silence = {"matchers": [{"name": "instance", "value": "b", "isRegex": False}],
                   "startsAt": fmt_iso(clock.now()), "endsAt": fmt_iso(clock.now() + 3600),
                   "createdBy": "t", "comment": "maintenance"}
        r = await client.post("/api/v2/silences", json=silence, headers=AUTH)
        assert r.status_code == 200 and r.json()["silenceID"]
        clock.advance(30)
        await daemon.pass_once()
        assert sent() == [("db", "firing", ["a"])]
        alerts = {a["labels"]["instance"]: a for a in (await client.get("/api/v2/alerts")).json()}
        assert alerts["b"]["status"] == {"inhibitedBy": [], "silencedBy": [r.json()["silenceID"]],
                                         "state": "suppressed"}
        assert alerts["a"]["receivers"] == [{"name": "db"}]
        quiet = await client.get("/api/v2/alerts", params={"silenced": "false"})
        assert [a["labels"]["instance"] for a in quiet.json()] == ["a"]
        groups = (await client.get("/api/v2/alerts/groups")).json()
        assert [(g["receiver"]["name"], g["labels"], len(g["alerts"])) for g in groups] == [
            ("db", {"alertname": "HighCPU"}, 1), ("rec", {"alertname": "HighCPU"}, 1)]
        a = next(i for i in daemon.store.incidents.open() if i.labels["instance"] == "a")
        ack = await client.post(f"/api/v1/incidents/{a.id}/ack", json={"by": "alice"}, headers=AUTH)
        assert ack.status_code == 200
        for _ in range(70):  # an hour and more, a post every minute as Prometheus does
            clock.advance(60)
            await client.post("/api/v2/alerts", json=[alert(clock, instance="a", service="db", ends=240)],
                              headers=AUTH)
            await daemon.pass_once()
        assert sent() == [("db", "firing", ["a"])], [(n.kind, n.created_at - clock.now(), [i.acknowledged_at for i in n.incidents]) for n in SENT]  # acknowledged: no repeat after repeat_interval
    run(write_config, registry, clock, tmp_path, scenario)


def test_a_restart_goes_on_resolving_posted_alerts(write_config, registry, clock, tmp_path):
    async def first(daemon, client):
        await client.post("/api/v2/alerts", json=[alert(clock, instance="a", ends=100)], headers=AUTH)

    async def second(daemon, client):
        assert len(daemon.store.incidents.open()) == 1
        clock.advance(100)
        await daemon.pass_once()
        assert daemon.store.incidents.open() == []
    run(write_config, registry, clock, tmp_path, first)
    run(write_config, registry, clock, tmp_path, second)


def test_posted_alerts_flap_like_rules_when_flapping_is_on(write_config, registry, clock, tmp_path):
    text = CONFIG.replace("flapping: false", "flapping: {window: 6, low: 10, high: 30}")

    async def scenario(daemon, client):
        for i in range(8):  # fire, resolve, fire, ...: churn
            ends = 300 if i % 2 == 0 else -1
            await client.post("/api/v2/alerts", json=[alert(clock, instance="a", starts=-2, ends=ends)],
                              headers=AUTH)
            clock.advance(2)
        flapping = [i for i in daemon.store.incidents.list(include_closed=True) if i.flapping]
        assert flapping and flapping[0].cause == "posted"
    run(write_config, registry, clock, tmp_path, scenario, text=text)


def test_the_posted_alerts_section_is_validated(write_config, registry):
    from alertd.config.schema import ConfigError
    with pytest.raises(ConfigError, match="posted_alerts.resolve_timeout: the resolve timeout must be more"):
        load_config(write_config(config_text(posted_alerts={"resolve_timeout": "0s"})), registry, environ={})
    config = load_config(write_config(config_text()), registry, environ={})
    assert dataclasses.asdict(config.posted_alerts)["resolve_timeout"] == 300


def test_the_receiver_regex_of_a_read_runs_on_re2(write_config, registry, clock, tmp_path):
    """`?receiver=` comes from anyone who can reach the port (reads need no token): on Python's
    re, `([a-z-]+)*!` against a 38-character receiver name tries every split of the name with
    the loop held (0.06 s at 20 characters, doubling with each: hours); on RE2 it is an
    ordinary answer."""
    name = "pagerduty-checkout-primary-oncall-team"
    text = config_text(http={"listen": "127.0.0.1:0", "token": TOKEN}, rules=[],
                       receivers={name: [{"type": "test_record"}]},
                       routes={"receiver": name, "group_by": ["alertname"], "group_wait": "0s"})

    async def scenario(daemon, client):
        await client.post("/api/v2/alerts", json=[alert(clock, instance="a")], headers=AUTH)
        await daemon.pass_once()
        for path in ("/api/v2/alerts", "/api/v2/alerts/groups"):
            hostile = await client.get(path, params={"receiver": "([a-z-]+)*!"})
            assert hostile.status_code == 200 and hostile.json() == []
            fitting = await client.get(path, params={"receiver": "pagerduty-.*"})
            assert fitting.status_code == 200 and len(fitting.json()) == 1
            partial = await client.get(path, params={"receiver": "pagerduty"})  # anchored, as Alertmanager's
            assert partial.json() == []
            lookahead = await client.get(path, params={"receiver": "(?=pager).*"})
            assert lookahead.status_code == 400
            assert "a lookahead" in lookahead.json()["error"] and "RE2" in lookahead.json()["error"]
    run(write_config, registry, clock, tmp_path, scenario, text=text)
