"""The API calls that change things: acknowledge, resolve, silences; the same code as the CLI."""

from __future__ import annotations

import json

from test_http_api import CONFIG, TOKEN, cpu, serve

from alertd.cli.entry import main
from alertd.incidents.actions import IncidentActions

WITH_TOKEN = CONFIG.replace("http: {listen: 127.0.0.1:0}", f"http: {{listen: 127.0.0.1:0, token: {TOKEN}}}")
assert TOKEN in WITH_TOKEN
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_acknowledge_unacknowledge_and_resolve(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        t = clock.now()
        daemon.sources["app"].pending = [cpu("a", t, 95)]
        await daemon.poll("app")
        (incident,) = [i for i in daemon.engine.tracker.open.values() if i.rule == "cpu_high"]
        url = f"/api/v1/incidents/{incident.id}"
        answers = {"no_token": await client.post(url + "/ack", json={"by": "mallory"})}
        answers["not_acked"] = IncidentActions(daemon.store, clock).find(incident.id).acknowledged
        answers["ack"] = await client.post(url + "/ack", json={"by": "alice", "comment": "looking"}, headers=AUTH)
        answers["again"] = await client.post(url + "/ack", json={"by": "bob"}, headers=AUTH)
        answers["stored"] = IncidentActions(daemon.store, clock).find(incident.id)
        answers["page"] = (await client.get("/")).text
        answers["unack"] = await client.post(url + "/unack", json={}, headers=AUTH)
        answers["missing"] = await client.post("/api/v1/incidents/999/ack", headers=AUTH)
        answers["not_json"] = await client.post(url + "/ack", content=b"alice", headers=AUTH)
        answers["list_body"] = await client.post(url + "/ack", json=["alice"], headers=AUTH)
        answers["bad_by"] = await client.post(url + "/ack", json={"by": 7}, headers=AUTH)
        answers["resolve"] = await client.post(url + "/resolve", json={"by": "alice", "comment": "fixed"},
                                               headers=AUTH)
        answers["ack_resolved"] = await client.post(url + "/ack", json={}, headers=AUTH)
        clock.advance(5)
        daemon.sources["app"].pending = [cpu("a", t + 5, 10)]
        await daemon.poll("app")
        answers["tracked"] = daemon.engine.tracker.is_open(incident.fingerprint)
        return answers

    a = serve(write_config, registry, clock, tmp_path, WITH_TOKEN, scenario)
    assert a["no_token"].status_code == 401 and a["not_acked"] is False
    ack = a["ack"].json()
    assert a["ack"].status_code == 200 and ack["changed"] is True
    assert ack["incident"]["acknowledged_by"] == "alice" and ack["incident"]["ack_comment"] == "looking"
    assert a["again"].json()["changed"] is False and "already acknowledged by alice" in a["again"].json()["message"]
    assert a["stored"].acknowledged_by == "alice"
    assert '<span class="mark" title="acknowledged by alice">acked</span>' in a["page"]
    assert a["unack"].json()["incident"]["acknowledged_at"] is None
    assert a["missing"].status_code == 404
    assert a["missing"].json()["error"] == "no incident has the id #999; see `alertd incidents list --all`"
    assert a["not_json"].status_code == 400 and a["not_json"].json()["error"].startswith("the request body is not valid JSON")
    assert a["list_body"].status_code == 400 and a["bad_by"].status_code == 400
    assert a["bad_by"].json()["error"] == '"by" must be a string, not int'
    resolved = a["resolve"].json()["incident"]
    assert resolved["state"] == "resolved" and resolved["resolution"] == "manual"
    assert a["ack_resolved"].status_code == 409 and "already resolved" in a["ack_resolved"].json()["error"]
    assert a["tracked"] is False  # the daemon's state machine took the resolve at its next tick


def test_silences_add_list_expire_and_seen_by_the_cli(write_config, registry, clock, tmp_path, capsys):
    async def scenario(daemon, client):
        t = clock.now()
        daemon.sources["app"].pending = [cpu("a", t, 95)]
        await daemon.poll("app")
        base = "/api/v1/silences"
        answers = {"no_token": await client.post(base, json={"matchers": ["rule=cpu_high"], "duration": "2h"})}
        answers["add"] = await client.post(base, headers=AUTH, json={
            "matchers": ["rule=cpu_high", 'host=~"a|b"'], "duration": "2h", "comment": "maintenance", "by": "alice"})
        answers["no_duration"] = await client.post(base, headers=AUTH, json={"matchers": ["rule=x"]})
        answers["bad_duration"] = await client.post(base, headers=AUTH, json={"matchers": ["rule=x"], "duration": "soon"})
        answers["bad_matchers"] = await client.post(base, headers=AUTH, json={"matchers": "rule=x", "duration": "1h"})
        answers["bad_matcher"] = await client.post(base, headers=AUTH, json={"matchers": ["rule=~\"(\""], "duration": "1h"})
        answers["everything"] = await client.post(base, headers=AUTH, json={"matchers": ['host=~".*"'], "duration": "1h"})
        answers["list"] = await client.get(base)
        answers["page"] = (await client.get("/silences")).text
        ident = answers["add"].json()["silence"]["id"]
        cli_list = [str(daemon.store.path)]
        answers["extend_no_token"] = await client.post(f"{base}/{ident}/extend", json={"duration": "3h"})
        answers["extend"] = await client.post(f"{base}/{ident}/extend", headers=AUTH,
                                              json={"duration": "3h", "by": "bob"})
        answers["extend_bad"] = await client.post(f"{base}/{ident}/extend", headers=AUTH, json={"by": "bob"})
        answers["expire"] = await client.delete(f"{base}/{ident}?by=carol", headers=AUTH)
        answers["history"] = [(e.event, e.actor) for e in daemon.store.history.of(1) if e.event.startswith("silence_")]
        answers["expire_again"] = await client.delete(f"{base}/{ident}", headers=AUTH)
        answers["expire_unknown"] = await client.delete(f"{base}/ffffffff", headers=AUTH)
        answers["active"] = await client.get(base)
        answers["all"] = await client.get(base + "?all=1")
        return answers, cli_list

    a, (store_path,) = serve(write_config, registry, clock, tmp_path, WITH_TOKEN, scenario)
    assert a["no_token"].status_code == 401
    added = a["add"].json()
    assert a["add"].status_code == 201 and added["matches_open_incidents"] == [1]
    silence = added["silence"]
    assert silence["matchers"] == ['rule="cpu_high"', 'host=~"a|b"'] and silence["created_by"] == "alice"
    assert silence["state"] == "active" and silence["ends_at"] - silence["starts_at"] == 7200
    assert a["no_duration"].json()["error"] == "say how long the silence lasts: --for 2h or --until TIME"
    assert a["bad_duration"].status_code == 400 and "'soon' is not a duration" in a["bad_duration"].json()["error"]
    assert a["bad_matchers"].status_code == 400 and a["bad_matcher"].status_code == 400
    assert "would silence everything" in a["everything"].json()["error"]
    assert [s["id"] for s in a["list"].json()["silences"]] == [silence["id"]]
    page = a["page"]
    assert silence["id"][:8] in page and "maintenance" in page and "(in 2h)" in page
    assert a["extend_no_token"].status_code == 401 and a["extend_bad"].status_code == 400
    extended = a["extend"].json()["silence"]
    assert extended["ends_at"] - silence["starts_at"] == 3 * 3600
    assert a["history"] == [("silence_added", "alice"), ("silence_extended", "bob"), ("silence_expired", "carol")]
    assert a["expire"].json()["silence"]["state"] == "expired"
    assert a["expire_again"].status_code == 409 and a["expire_unknown"].status_code == 404
    assert a["active"].json()["silences"] == [] and len(a["all"].json()["silences"]) == 1
    capsys.readouterr()
    assert main(["silence", "list", "--all", "--json", "--store", store_path]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == silence["id"] and listed["comment"] == "maintenance"
