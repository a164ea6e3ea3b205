"""Alertmanager's timer rules, one test each, with a fake clock (no sleeping).

From Alertmanager's configuration docs (route): "group_wait: how long to initially wait to
send a notification for a group of alerts"; "group_interval: how long to wait before sending
a notification about new alerts that are added to a group of alerts for which an initial
notification has already been sent"; "repeat_interval: how long to wait before sending a
notification again if it has already been sent successfully"; per receiver integration,
"send_resolved: whether to notify about resolved alerts".
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from routing_helpers import BASE, Shop

from alertd.delivery.worker import OutboxWorker
from alertd.log import get_logger
from alertd.metrics import Metrics


@pytest.fixture
def shop(write_config, registry, clock, tmp_path):
    s = Shop(write_config, registry, clock, tmp_path)
    yield s
    s.close()


def test_first_notice_of_a_new_group_waits_group_wait(shop):
    shop.feed({"a": 95})
    shop.advance(29)
    assert shop.flush() == 0 and shop.notices() == []
    shop.advance(1)
    assert shop.flush() == 1
    assert shop.notices() == [("firing", "team", ("a:firing",))]


def test_alerts_arriving_during_group_wait_share_the_first_notice(shop):
    shop.feed({"a": 95})
    shop.advance(10, {"a": 95, "b": 96})
    shop.advance(20)
    shop.flush()
    assert shop.notices() == [("firing", "team", ("a:firing", "b:firing"))]
    note = shop.store.outbox.get(shop.rows()[0]["id"]).notification
    assert note.title == "[FIRING:2] cpu_high" and note.group_labels == {"rule": "cpu_high"}


def test_later_changes_are_batched_until_group_interval(shop):
    shop.feed({"a": 95})
    shop.advance(30)
    shop.flush()
    shop.advance(60, {"a": 95, "b": 96})  # b joins 90s after the group was created
    shop.advance(120, {"a": 95, "b": 96, "c": 97})
    assert shop.flush() == 0  # the group's next tick is 30s + 5m
    shop.advance(329 - 210)
    assert shop.flush() == 0
    shop.advance(1)  # t = 330 = group_wait + group_interval
    assert shop.flush() == 1
    assert shop.notices()[-1] == ("firing", "team", ("a:firing", "b:firing", "c:firing"))


def test_unchanged_firing_group_is_resent_after_repeat_interval(shop):
    shop.feed({"a": 95})
    shop.advance(30)
    shop.flush()
    for _ in range(47):  # group_interval ticks for 4h - 5m: nothing changes, nothing is sent
        shop.advance(300)
        shop.flush()
    assert len(shop.notices()) == 1
    shop.advance(300)  # 4h after the first notice
    assert shop.flush() == 1
    rows = shop.rows()
    assert [r["kind"] for r in rows] == ["firing", "firing"]
    assert rows[0]["idempotency_key"] != rows[1]["idempotency_key"]  # a new sequence number


def test_resolved_notice_goes_out_at_the_next_group_interval_tick(shop):
    shop.feed({"a": 95, "b": 95})
    shop.advance(30)
    shop.flush()
    shop.advance(10, {"a": 10, "b": 95})  # a resolves
    shop.advance(289)
    assert shop.flush() == 0
    shop.advance(1)
    assert shop.flush() == 1
    # Alertmanager sends the group's whole state: b still firing, a resolved.
    assert shop.notices()[-1] == ("firing", "team", ("a:resolved", "b:firing"))
    shop.advance(10, {"b": 10})
    shop.advance(290)
    shop.flush()
    assert shop.notices()[-1] == ("resolved", "team", ("b:resolved",))
    assert shop.store.groups.all() == []  # every member resolved and told: the group is gone


def test_send_resolved_false_never_sends_resolved_notices(write_config, registry, clock, tmp_path):
    shop = Shop(write_config, registry, clock, tmp_path, BASE.replace("receiver: team\n  group_by",
                                                                      "receiver: quiet\n  group_by"))
    try:
        shop.feed({"a": 95, "b": 95})
        shop.advance(30)
        shop.flush()
        shop.advance(10, {"a": 10, "b": 95})
        shop.advance(290)
        assert shop.flush() == 0  # b still firing, a's resolution is not news for this integration
        shop.advance(10, {"b": 10})
        shop.advance(290)
        assert shop.flush() == 0  # all resolved: the log is cleared, nothing sent
        assert shop.notices() == [("firing", "quiet", ("a:firing", "b:firing"))]
        shop.advance(10, {"b": 95})  # fires again: a new group, a first notice after group_wait
        shop.advance(30)
        shop.flush()
        assert shop.notices()[-1] == ("firing", "quiet", ("b:firing",))
    finally:
        shop.close()


def test_fired_and_resolved_within_group_wait_sends_nothing_and_says_why(shop):
    shop.feed({"a": 95})
    shop.advance(10, {"a": 10})
    shop.advance(20)
    assert shop.flush() == 0 and shop.notices() == []
    incident = shop.incident("a")
    assert incident.state == "resolved" and incident.notified_at is None
    assert "group_wait" in incident.suppressed
    assert [e.event for e in shop.store.history.of(incident.id)] == ["pending", "fired", "resolved", "suppressed"]


def test_group_by_all_labels_makes_one_group_per_alert(write_config, registry, clock, tmp_path):
    shop = Shop(write_config, registry, clock, tmp_path, BASE.replace("group_by: [rule]", "group_by: ['...']"))
    try:
        shop.feed({"a": 95, "b": 95})
        shop.advance(30)
        shop.flush()
        assert sorted(shop.notices()) == [("firing", "team", ("a:firing",)), ("firing", "team", ("b:firing",))]
    finally:
        shop.close()


def test_restart_in_the_middle_of_group_wait_still_sends_once(shop, registry, clock):
    shop.feed({"a": 95})
    shop.advance(10)
    engine = shop.restart()  # the store is closed and reopened; nothing in memory survives
    notifier = registry.get("notifier", "test_record")(shop.config.receivers["team"][0].params, None)
    sent = sys.modules[type(notifier).__module__].SENT
    sent.clear()
    dispatcher = OutboxWorker(shop.store, {("team", 0): notifier}, clock, Metrics(), get_logger(),
                              config=shop.config)
    assert engine.router.flush_due() == 0  # 20s of group_wait left
    shop.advance(20)
    assert engine.router.flush_due() == 1
    assert asyncio.run(dispatcher.run_once()) == 1
    for _ in range(3):
        shop.advance(60)
        engine.router.flush_due()
        asyncio.run(dispatcher.run_once())
    assert [(n.kind, [i.labels["host"] for i in n.incidents]) for n in sent] == [("firing", ["a"])]


def test_reload_with_an_unchanged_route_keeps_its_timers(shop):
    shop.feed({"a": 95})
    shop.advance(20)
    # A reload that changes other parts of the config (a new rule, another receiver's type).
    shop.reload(BASE.replace("receivers:", """  - name: mem_high
    source: app
    series: mem{host=~".+"}
    detector: {type: test_above, limit: 80}
receivers:""").replace("other: [{type: test_record}]", "other: [{type: console}]"))
    shop.advance(9)
    assert shop.flush() == 0  # the timer was not restarted ...
    shop.advance(1)
    assert shop.flush() == 1  # ... nor reset: the first notice comes at group_wait
    shop.advance(60, {"a": 95, "b": 95})
    shop.reload(BASE)
    shop.advance(239)
    assert shop.flush() == 0
    shop.advance(1)  # and the group_interval tick survives a reload too
    assert shop.flush() == 1


def test_reload_that_removes_a_route_moves_its_groups_to_the_new_tree(shop):
    text = BASE + """  routes:
    - {match: {host: a}, receiver: other}
"""
    shop.reload(text)
    shop.feed({"a": 95})
    shop.advance(30)
    shop.flush()
    assert shop.notices() == [("firing", "other", ("a:firing",))]
    shop.reload(BASE)  # the child route is gone: a's group is re-routed to the root route now
    shop.advance(29)
    assert shop.flush() == 0  # a new group: group_wait from the reload (Alertmanager's reload)
    shop.advance(1)
    assert shop.flush() == 1
    assert shop.notices()[-1] == ("firing", "team", ("a:firing",))
    assert [g.receiver for g in shop.store.groups.all()] == ["team"]


def test_acknowledge_stops_repeats_and_the_resolve_is_still_sent(shop):
    from alertd.incidents.actions import IncidentActions

    shop.feed({"a": 95})
    shop.advance(30)
    shop.flush()
    actions = IncidentActions(shop.store, shop.clock)
    actions.acknowledge(shop.incident("a").id, by="alice", comment="looking")
    for _ in range(60):  # 5 hours of group_interval ticks: no repeat for an acknowledged incident
        shop.advance(300)
        shop.flush()
    assert [n[0] for n in shop.notices()] == ["firing"]
    shop.advance(5, {"a": 10})
    shop.advance(300)
    shop.flush()
    assert shop.notices()[-1] == ("resolved", "team", ("a:resolved",))
    events = [e.event for e in shop.store.history.of(shop.incident("a").id)]
    assert events[:4] == ["pending", "fired", "notified", "acknowledged"] and events[-2:] == ["resolved", "notified"]


def test_unacknowledge_lets_repeats_resume(shop):
    from alertd.incidents.actions import IncidentActions

    shop.feed({"a": 95})
    shop.advance(30)
    shop.flush()
    actions = IncidentActions(shop.store, shop.clock)
    actions.acknowledge("a" and shop.incident("a").fingerprint, by="alice")
    shop.advance(4 * 3600)
    shop.flush()
    assert len(shop.notices()) == 1
    assert actions.unacknowledge(shop.incident("a").id, by="alice").changed
    shop.advance(300)
    assert shop.flush() == 1  # the repeat interval had long passed


def test_manual_resolve_sends_the_resolved_notice_and_the_next_anomaly_is_a_new_incident(shop):
    from alertd.incidents.actions import IncidentActions

    shop.feed({"a": 95})
    shop.advance(30)
    shop.flush()
    first = shop.incident("a")
    IncidentActions(shop.store, shop.clock).resolve(first.id, by="bob")
    shop.advance(300)
    shop.flush()
    assert shop.notices()[-1] == ("resolved", "team", ("a:resolved",))
    shop.advance(5, {"a": 96})  # the daemon's tracker picks the resolve up and opens a new incident
    second = shop.incident("a")
    assert second.id != first.id and second.state == "firing"
    assert shop.store.incidents.get(first.id).resolution == "manual"


def test_reload_that_changes_a_routes_receiver_tells_the_new_one_once(shop):
    shop.feed({"a": 95})
    shop.advance(30)
    shop.flush()
    shop.reload(BASE.replace("  receiver: team\n  group_by", "  receiver: other\n  group_by"))
    for _ in range(4):
        shop.advance(300)
        shop.flush()
    assert shop.notices() == [("firing", "team", ("a:firing",)), ("firing", "other", ("a:firing",))]


def test_notices_carry_alertmanagers_group_key_and_labels(write_config, registry, clock, tmp_path):
    """groupKey is the route's path of matchers and the group's labels, as Alertmanager writes
    it: two routes' groups of the same labels differ; `rule` (no alert carries it) shows as
    alertname."""
    text = BASE.replace("  repeat_interval: 4h\n", """  repeat_interval: 4h
  routes:
    - matchers: ['host=~"a|b"']
      receiver: other
      continue: true
      routes:
        - {matchers: ['host="b"', 'alertname=~"cpu.*"'], receiver: other, group_by: [host]}
    - {matchers: ['host="a"'], receiver: quiet, group_by: ['...']}
""")
    s = Shop(write_config, registry, clock, tmp_path, text)
    try:
        s.feed({"a": 95, "b": 95, "c": 95})
        s.advance(30)
        s.flush()
        keys = {}
        for row in s.rows():
            note = s.store.outbox.get(row["id"]).notification
            keys[(note.receiver, tuple(sorted(i.labels["host"] for i in note.incidents)))] = note.group_key
        assert keys == {
            ("team", ("c",)): '{}:{alertname="cpu_high"}',
            ("other", ("a",)): '{}/{host=~"a|b"}:{alertname="cpu_high"}',
            ("other", ("b",)): '{}/{host=~"a|b"}/{alertname=~"cpu.*",host="b"}:{host="b"}',
            ("quiet", ("a",)): '{}/{host="a"}:{alertname="cpu_high", host="a", severity="warning"}',
        }
    finally:
        s.close()
