"""`alertd incidents`, `alertd silence` and `alertd notifications` on a real store."""

from __future__ import annotations

import json

import pytest
from cli_shop import cli, shop  # noqa: F401  (shop: a fixture)


def test_incidents_lists_open_incidents_and_json_for_scripts(shop, capsys):
    store = str(shop.path)
    code, out, _ = cli(capsys, "incidents", "--store", store)
    assert code == 0 and "#2     firing" in out and "cpu_high {host=b}" in out
    code, out, _ = cli(capsys, "incidents", "list", "--json", "--store", store)
    rows = json.loads(out)
    assert code == 0 and [(r["id"], r["state"], r["labels"]) for r in rows] == [
        (2, "firing", {"host": "b"}), (1, "firing", {"host": "a"})]


def test_ack_unack_resolve_and_show(shop, capsys):
    store = str(shop.path)
    code, out, _ = cli(capsys, "incidents", "ack", "1", "--by", "alice", "-m", "on it", "--store", store)
    assert code == 0 and out.strip() == "incident #1 acknowledged by alice"
    code, out, _ = cli(capsys, "incidents", "--store", store)
    assert "#1     firing,acked" in out
    code, out, _ = cli(capsys, "incidents", "unack", "#1", "--by", "alice", "--json", "--store", store)
    assert code == 0 and json.loads(out)["incident"]["acknowledged_by"] is None
    fp = shop.incident("b").fingerprint
    code, out, _ = cli(capsys, "incidents", "resolve", fp, "--by", "bob", "--store", store)
    assert code == 0 and out.strip() == "incident #2 resolved by bob"
    code, out, _ = cli(capsys, "incidents", "show", "2", "--store", store)
    assert "state        resolved" in out and "(manual)" in out
    assert "resolved        comment" not in out and "(by bob)" in out and "notified" in out
    code, out, _ = cli(capsys, "incidents", "show", "2", "--json", "--store", store)
    shown = json.loads(out)
    assert [e["event"] for e in shown["history"]] == ["pending", "fired", "notified", "resolved"]
    assert shown["notifications"][0]["kind"] == "firing"


@pytest.mark.parametrize("args,message", [
    (["incidents", "ack", "99"], "error: no incident has the id #99; see `alertd incidents list --all`"),
    (["incidents", "resolve", "feedfacefeedface"], 'error: no incident has the fingerprint "feedfacefeedface"'),
    (["incidents", "show", "nope"], 'error: no incident has the fingerprint "nope"'),
    (["silence", "add", "--incident", "77", "--for", "1h"], "error: no incident has the id #77"),
    (["silence", "add", 'provider=~"adyen|stripe', "--for", "2h"], "unbalanced quote"),
    (["silence", "add", 'provider=~"(adyen"', "--for", "2h"], 'the regex "(adyen" of label "provider" is invalid'),
    (["silence", "add", "rule=x", "--for", "2hh"], 'error: --for "2hh" is not a duration; write a value such as 30m or 2h'),
    (["silence", "add", "rule=x", "--until", "tomorrow"], 'error: --until "tomorrow" is not a time'),
    (["silence", "expire", "0000dead"], 'error: no silence has the id "0000dead"'),
])
def test_bad_input_is_one_sentence_exit_1_and_changes_nothing(shop, capsys, args, message):
    code, out, err = cli(capsys, *args, "--store", str(shop.path))
    assert code == 1 and message in err and out == ""
    assert shop.store.silences.rows() == [] and shop.store.history.events_of_kind("acknowledged") == []
    assert len(shop.store.incidents.open()) == 2


def test_silence_add_list_expire(shop, capsys):
    store = str(shop.path)
    code, out, _ = cli(capsys, "silence", "add", "rule=cpu_high", 'host=~"a|c"', "--for", "2h",
                       "--comment", "maintenance", "--author", "carol", "--store", store)
    silence_id = out.splitlines()[0]
    assert code == 0 and 'silences {rule="cpu_high", host=~"a|c"}' in out and "matches 1 open incident (#1)" in out
    code, out, _ = cli(capsys, "silence", "list", "--store", store)
    assert out.startswith(silence_id[:8]) and "active" in out and "by carol" in out and "# maintenance" in out
    code, out, _ = cli(capsys, "incidents", "--store", store)
    assert "#1     firing,silenced" in out and "#2     firing " in out
    code, out, _ = cli(capsys, "silence", "add", "--incident", "2", "--for", "30m", "--json", "--store", store)
    data = json.loads(out)
    assert data["matchers"] == ['rule="cpu_high"', 'host="b"'] and data["open_incidents_matched"] == [2]
    code, out, _ = cli(capsys, "silence", "extend", silence_id[:8], "--for", "5h", "--by", "erin", "--store", store)
    assert code == 0 and out.strip().startswith(f"silence {silence_id} now ends") and out.strip().endswith("ends 5h from now")
    code, out, err = cli(capsys, "silence", "extend", silence_id[:8], "--store", store)
    assert code == 1 and "say when the silence ends: --for 2h (from now) or --until TIME" in err
    code, out, _ = cli(capsys, "silence", "expire", silence_id[:8], "--by", "frank", "--store", store)
    assert code == 0 and out.strip() == f"expired {silence_id}"
    actors = [(e.event, e.actor) for e in shop.store.history.of(1) if e.event.startswith("silence_")]
    assert actors == [("silence_added", "carol"), ("silence_extended", "erin"), ("silence_expired", "frank")]
    code, out, _ = cli(capsys, "silence", "list", "--json", "--store", store)
    assert [s["state"] for s in json.loads(out)] == ["active"]
    code, out, err = cli(capsys, "silence", "expire", silence_id, "--store", store)
    assert code == 1 and "already expired" in err


def test_notifications_and_failed_ones(shop, capsys):
    store = str(shop.path)
    code, out, _ = cli(capsys, "notifications", "--store", store)
    assert code == 0 and "pending  firing    team/test_record#0  attempts=0  [FIRING:2] cpu_high" in out
    row = shop.store.outbox.rows()[0]
    shop.store.outbox.mark_retry(row["id"], shop.clock.now() + 60, "test receiver is down")
    code, out, _ = cli(capsys, "notifications", "--failed", "--store", store)
    assert "retrying" in out and "last error: test receiver is down" in out
    code, out, _ = cli(capsys, "notifications", "--failed", "--json", "--store", store)
    assert [r["status"] for r in json.loads(out)] == ["pending"]
