"""Silences and inhibition: who is muted, who is still notified, and what the store says."""

from __future__ import annotations

import re

import pytest
from routing_helpers import Shop

from alertd.config.routing import InhibitRule
from alertd.matchers import parse_matcher
from alertd.routing.inhibit import Inhibitor
from alertd.routing.silences import SilenceError, SilenceService
from alertd.routing.tree import routing_labels

CONFIG = """\
sources:
  app: {type: test_list, every: 5s}
rules:
  - name: cpu_high
    source: app
    series: cpu{host=~".+"}
    detector: {type: test_above, limit: 90}
    severity: warning
    flapping: false
  - name: cpu_critical
    source: app
    series: cpu{host=~".+"}
    detector: {type: test_above, limit: 98}
    severity: critical
    flapping: false
receivers:
  team: [{type: test_record}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [host]
routes:
  receiver: team
  group_by: ['...']
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
"""


@pytest.fixture
def shop(write_config, registry, clock, tmp_path):
    s = Shop(write_config, registry, clock, tmp_path, CONFIG)
    yield s
    s.close()


def notified(shop) -> set[tuple[str, str]]:
    """(rule, host) of every incident in a firing notice so far."""
    import json
    out = set()
    for r in shop.rows():
        for i in json.loads(r["payload"])["incidents"]:
            if i["state"] != "resolved":
                out.add((i["rule"], i["labels"]["host"]))
    return out


def open_incident(shop, rule, host):
    return next(i for i in shop.store.incidents.open() if i.rule == rule and i.labels["host"] == host)


@pytest.mark.parametrize("matchers,silenced", [
    (['rule="cpu_high"'], {"a", "b", "ab"}),
    (['host=~"a|b"'], {"a", "b"}),
    (['host=~"a"'], {"a"}),  # anchored: "ab" does not match
    (['rule="cpu_high"', 'host!="a"'], {"b", "ab"}),
    (['rule="cpu_high"', 'host!~"a.*"'], {"b"}),
    (['rule="cpu_high"', 'host="b"'], {"b"}),
    (['{rule="cpu_high",host=~"a.+"}'], {"ab"}),
    (['severity="critical"'], set()),
])
def test_silence_matrix(shop, matchers, silenced):
    silence = SilenceService(shop.store, shop.clock).add(matchers, duration=3600, author="t", comment="matrix")
    shop.feed({"a": 95, "b": 95, "ab": 95})
    assert notified(shop) == {("cpu_high", h) for h in {"a", "b", "ab"} - silenced}
    for host in ("a", "b", "ab"):
        incident = open_incident(shop, "cpu_high", host)
        assert incident.state == "firing"  # silenced incidents are still tracked
        assert incident.silenced_by == ([silence.id] if host in silenced else [])
        if host in silenced:
            assert incident.suppressed == f"silenced by {silence.id}"
            assert "silenced" in [e.event for e in shop.store.history.of(incident.id)]


def test_pending_and_expired_silences_do_not_mute(shop):
    service = SilenceService(shop.store, shop.clock)
    service.add(['host="a"'], starts_at=shop.clock.now() + 600, duration=3600)
    done = service.add(['host="b"'], duration=60)
    service.expire(done.id)
    shop.feed({"a": 95, "b": 95})
    assert notified(shop) == {("cpu_high", "a"), ("cpu_high", "b")}


def test_an_expired_silence_lets_the_incident_through_at_the_next_tick(shop):
    service = SilenceService(shop.store, shop.clock)
    silence = service.add(['host="a"'], duration=3600)
    shop.feed({"a": 95})
    assert notified(shop) == set()
    shop.advance(30, {"a": 95})
    service.expire(silence.id, by="bob")
    shop.advance(30, {"a": 95})  # the group's next tick (group_interval 1m)
    assert notified(shop) == {("cpu_high", "a")}
    events = [(e.event, e.actor) for e in shop.store.history.of(open_incident(shop, "cpu_high", "a").id)]
    assert events == [("pending", None), ("fired", None), ("silenced", None), ("suppressed", None),
                      ("silence_expired", "bob"), ("unsilenced", None), ("notified", None)]


def test_silence_changes_name_their_actor_in_the_incidents_history(shop):
    shop.feed({"a": 95, "b": 95})
    service = SilenceService(shop.store, shop.clock)
    silence = service.add(['host="a"'], duration=3600, author="alice", comment="deploy")
    extended = service.extend(silence.id[:6], ends_at=shop.clock.now() + 7200, by="carol")
    assert extended.ends_at == shop.clock.now() + 7200 and extended.comment == "deploy"
    service.expire(silence.id, by="dave")
    a = open_incident(shop, "cpu_high", "a")
    history = [(e.event, e.actor, e.detail.get("silence")) for e in shop.store.history.of(a.id)
               if e.event.startswith("silence_")]
    assert history == [("silence_added", "alice", silence.id), ("silence_extended", "carol", silence.id),
                       ("silence_expired", "dave", silence.id)]
    b = open_incident(shop, "cpu_high", "b")
    assert not [e for e in shop.store.history.of(b.id) if e.event.startswith("silence_")]
    with pytest.raises(SilenceError, match="already expired; add a new one instead"):
        service.extend(silence.id, ends_at=shop.clock.now() + 60, by="x")
    other = service.add(['host="b"'], duration=60)
    with pytest.raises(SilenceError, match="the new end is not after now"):
        service.extend(other.id, ends_at=shop.clock.now() - 1, by="x")


def test_a_silence_added_after_the_first_notice_stops_repeats(shop):
    shop.feed({"a": 95})
    SilenceService(shop.store, shop.clock).add(['host="a"'], duration=3 * 3600)
    for _ in range(150):  # 2.5 hours of ticks, repeat_interval is 1h
        shop.advance(60, {"a": 95})
    assert len(shop.rows()) == 1


def test_critical_inhibits_warning_on_the_same_host_only(shop):
    shop.feed({"a": 99, "b": 95})
    assert notified(shop) == {("cpu_critical", "a"), ("cpu_high", "b")}
    warning_a = open_incident(shop, "cpu_high", "a")
    critical_a = open_incident(shop, "cpu_critical", "a")
    assert warning_a.inhibited_by == [critical_a.fingerprint] and warning_a.silenced_by == []
    assert warning_a.suppressed == f"inhibited by {critical_a.fingerprint}"
    # the critical alert resolves: the warning is no longer inhibited and is notified
    shop.advance(60, {"a": 95, "b": 95})
    shop.advance(60, {"a": 95, "b": 95})
    assert ("cpu_high", "a") in notified(shop)
    events = [e.event for e in shop.store.history.of(warning_a.id)]
    assert events.index("inhibited") < events.index("uninhibited") < events.index("notified")


def test_a_silenced_source_still_inhibits(shop):
    SilenceService(shop.store, shop.clock).add(['rule="cpu_critical"'], duration=3600)
    shop.feed({"a": 99})
    assert notified(shop) == set()
    assert open_incident(shop, "cpu_high", "a").inhibited_by


def test_alerts_that_match_both_sides_never_inhibit_each_other(write_config, registry, clock, tmp_path):
    text = CONFIG.replace("""  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']""", """  - source_matchers: ['host="a"']
    target_matchers: ['host="a"']""")
    shop = Shop(write_config, registry, clock, tmp_path, text)
    try:
        shop.feed({"a": 95})  # matches both sides, and there is no other source
        assert notified(shop) == {("cpu_high", "a")}
        shop.advance(60, {"a": 99})  # cpu_critical (host a) fires: it matches both sides too
        assert open_incident(shop, "cpu_high", "a").inhibited_by == []
        assert open_incident(shop, "cpu_critical", "a").inhibited_by == []
        assert notified(shop) == {("cpu_high", "a"), ("cpu_critical", "a")}
    finally:
        shop.close()


def test_a_two_sided_rule_mutes_only_targets_that_are_not_sources():
    """The issue's case, as Alertmanager's Inhibitor.Mutes decides it: both ClusterDowns are
    notified, ServiceSlow of the same cluster is muted by both."""
    rule = InhibitRule((parse_matcher('alertname="ClusterDown"'),), (parse_matcher('cluster=~".+"'),), ("cluster",))
    firing = [("fa", {"cluster": "eu", "zone": "a"}, "ClusterDown", ""),
              ("fb", {"cluster": "eu", "zone": "b"}, "ClusterDown", ""),
              ("fs", {"cluster": "eu"}, "ServiceSlow", ""),
              ("fu", {"cluster": "us"}, "ServiceSlow", "")]
    inhibitor = Inhibitor((rule,), firing)
    labels = {fp: routing_labels(lb, name, sev) for fp, lb, name, sev in firing}
    assert inhibitor.inhibited_labels(labels["fa"], "fa") == []
    assert inhibitor.inhibited_labels(labels["fb"], "fb") == []
    assert inhibitor.inhibited_labels(labels["fs"], "fs") == ["fa", "fb"]
    assert inhibitor.inhibited_labels(labels["fu"], "fu") == []  # another cluster
    # a label missing on both sides counts as equal; on one side only, it does not
    missing = Inhibitor((InhibitRule((parse_matcher('alertname="A"'),), (parse_matcher('alertname="B"'),),
                                     ("dc",)),), [("a1", {}, "A", "")])
    assert missing.inhibited_labels(routing_labels({}, "B", ""), "b1") == ["a1"]
    assert missing.inhibited_labels(routing_labels({"dc": "x"}, "B", ""), "b2") == []


def test_expire_on_resolve(shop):
    service = SilenceService(shop.store, shop.clock)
    silence = service.add(['host="a"'], duration=3600, expire_on_resolve=True)
    keep = service.add(['host="b"'], duration=3600, expire_on_resolve=True)
    shop.feed({"a": 95, "b": 95})
    shop.advance(60, {"a": 10, "b": 95})
    shop.advance(60, {"a": 10, "b": 95})
    states = {s.id: s.state(shop.clock.now()) for s in service.list(include_expired=True)}
    assert states == {silence.id: "expired", keep.id: "active"}


@pytest.mark.parametrize("matchers,kwargs,message", [
    ([], {"duration": 60}, "needs at least one matcher"),
    (['host=~".*"'], {"duration": 60}, "would silence everything"),
    (['host!="a"'], {"duration": 60}, "would silence everything"),  # as amtool: it matches "" too
    (['host=~"(a"'], {"duration": 60}, 'the regex "(a" of label "host" is invalid'),
    (['host="a'], {"duration": 60}, "unbalanced quote"),
    (['host="a"'], {}, "say how long"),
    (['host="a"'], {"duration": 0}, "is not more than 0s"),
])
def test_bad_silences_are_refused_and_nothing_is_stored(shop, matchers, kwargs, message):
    service = SilenceService(shop.store, shop.clock)
    with pytest.raises(SilenceError, match=re.escape(message)):
        service.add(matchers, **kwargs)
    assert service.list(include_expired=True) == []


def test_a_silence_that_ends_does_not_resend_before_repeat_interval(shop):
    """Alertmanager keeps the notification log while every alert is muted: when the silence
    ends, the receiver already knows the alert, so it hears of it again at repeat_interval."""
    shop.feed({"a": 95})
    assert len(shop.rows()) == 1
    service = SilenceService(shop.store, shop.clock)
    silence = service.add(['host="a"'], duration=600)
    shop.advance(60, {"a": 95})
    shop.advance(60, {"a": 95})
    service.expire(silence.id)
    for _ in range(50):  # 50 more minutes: still inside the hour of repeat_interval
        shop.advance(60, {"a": 95})
    assert len(shop.rows()) == 1
    for _ in range(15):  # past the hour: the repeat
        shop.advance(60, {"a": 95})
    assert len(shop.rows()) == 2 and shop.rows()[1]["kind"] == "firing"


def test_an_inhibition_that_ends_does_not_resend_the_target(shop):
    shop.feed({"a": 95})  # the warning is notified
    shop.advance(60, {"a": 99})  # the critical fires and inhibits the warning
    assert notified(shop) == {("cpu_high", "a"), ("cpu_critical", "a")}
    rows = len(shop.rows())
    shop.advance(60, {"a": 95})  # the critical resolves: its resolve is sent, not the warning again
    shop.advance(60, {"a": 95})
    news = shop.rows()[rows:]
    assert [r["kind"] for r in news] == ["resolved"]
