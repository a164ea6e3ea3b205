"""The alert state machine: for, clear_for, keep_firing_for, flapping, no data, missing series."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest
from routing_helpers import BASE, Shop

from alertd.config.types import FlapSettings
from alertd.incidents.flapping import fill_gap, percent_state_change, push
from alertd.incidents.tracker import AlertTracker
from alertd.model import Sample, Status, Verdict, make_labels

FLAP = FlapSettings(window=21, low=10, high=20)


def rule(**kw):
    base = dict(name="r", for_=0.0, clear_for=0.0, keep_firing_for=0.0, severity="warning", labels={},
                annotations={}, flapping=FlapSettings(enabled=False))
    base.update(kw)
    return SimpleNamespace(**base)


def verdict(ts, bad=True, value=None, score=None):
    value = (95.0 if bad else 10.0) if value is None else value
    return Verdict("r", "cpu", (("host", "a"),), ts, value, Status.ANOMALOUS if bad else Status.OK,
                   (0.9 if bad else 0.1) if score is None else score, 0.5, math.nan, 90.0,
                   f"cpu {value}")


def run(tracker, r, seq, t0=0.0, step=10.0):
    """Feed a string like 'AAOA' (A anomalous, O ok) and return the transition kinds."""
    kinds = []
    for k, c in enumerate(seq):
        change = tracker.observe(r, verdict(t0 + k * step, c == "A"), "fp")
        if change is not None and change.transition is not None:
            kinds.append(change.transition.kind)
    return kinds


def test_for_holds_a_new_incident_pending():
    t, r = AlertTracker(), rule(for_=30)
    assert run(t, r, "AAA") == [] and t.open["fp"].state == "pending"
    assert run(t, r, "A", t0=30) == ["firing"]


def test_a_pending_incident_that_clears_closes_quietly():
    t, r = AlertTracker(), rule(for_=30)
    run(t, r, "AO")
    assert not t.is_open("fp")


def test_clear_for_needs_continuous_normal_points():
    t, r = AlertTracker(), rule(clear_for=25)
    assert run(t, r, "AOOAOO") == ["firing"]  # the anomaly at 30s restarts the clear_for clock
    assert run(t, r, "OO", t0=60) == ["resolved"]  # 60 - 40 >= 25


def test_keep_firing_for_counts_from_the_last_anomalous_point():
    t, r = AlertTracker(), rule(keep_firing_for=45)
    assert run(t, r, "AOOO") == ["firing"]  # 30s after the last anomaly: still firing
    assert run(t, r, "OO", t0=40) == ["resolved"]  # 50s after it
    assert t.open == {}


def test_repeated_anomalies_update_the_incident_without_transitions():
    t, r = AlertTracker(), rule()
    run(t, r, "A")
    for k, score in enumerate((0.7, 0.95, 0.8), start=1):
        change = t.observe(r, verdict(k * 10.0, value=90 + k, score=score), "fp")
        assert change.transition is None
    inc = t.open["fp"]
    assert inc.count == 4 and inc.last_value == 93 and inc.peak_score == 0.95


def test_percent_state_change_weighs_recent_changes_more():
    history, n = 0, 0
    for bad in (True, False, True, False):  # 3 changes, the newest ones
        history, n = push(history, n, bad, 21)
    recent = percent_state_change(history, n, 21)
    for _ in range(17):
        history, n = push(history, n, False, 21)
    old = percent_state_change(history, n, 21)
    assert 16 < recent < 18 and 12 < old < 14 and old < recent
    assert percent_state_change(0b111111, 6, 21) == 0


def test_flapping_sends_one_notice_holds_churn_and_settles_into_resolved():
    t, r = AlertTracker(), rule(flapping=FLAP)
    kinds = run(t, r, "AOAOAOAOAO")
    # two fire/resolve cycles, then the percent state change reaches 20%: one flapping notice
    assert kinds == ["firing", "resolved", "firing", "resolved", "flapping"]
    inc = t.open["fp"]
    assert inc.flapping and inc.state == "firing"
    kinds = [run(t, r, "O", t0=100 + 10 * k) for k in range(30)]
    settled = next(k for k, ks in enumerate(kinds) if ks)
    assert kinds[settled] == ["resolved"] and t.open == {}
    assert settled >= 10 and all(ks == [] for ks in kinds[:settled] + kinds[settled + 1:])


def test_flapping_settles_into_firing_when_the_anomaly_stays():
    t, r = AlertTracker(), rule(flapping=FLAP)
    run(t, r, "AOAOAOA")
    assert t.open["fp"].flapping
    kinds = run(t, r, "A" * 25, t0=70)
    assert kinds == ["firing"] and not t.open["fp"].flapping and t.open["fp"].state == "firing"


def test_flapping_disabled_lets_every_change_through():
    t, r = AlertTracker(), rule()
    assert run(t, r, "AOAOAOAO") == ["firing", "resolved"] * 4


def test_tracker_state_survives_a_restart_through_the_store(write_config, registry, clock, tmp_path):
    shop = Shop(write_config, registry, clock, tmp_path, BASE.replace("flapping: false", "flapping: {low: 10, high: 20}"))
    try:
        kinds = [tr.kind for v in (95, 10, 95, 10) for tr in shop.advance(5, {"a": v}).transitions]
        assert kinds == ["firing", "resolved", "firing", "resolved"]
        shop.restart(BASE.replace("flapping: false", "flapping: {low: 10, high: 20}"))
        kinds = [tr.kind for tr in shop.advance(5, {"a": 95}).transitions]
        assert kinds == ["flapping"]  # the history from before the restart counted
    finally:
        shop.close()


def test_a_gap_in_evaluations_counts_as_unchanged_ones():
    every = FlapSettings(window=21, low=10, high=20, interval=10.0)
    history, evaluations = push(0b10, 2, True, 21)  # newest first: A, O, A
    assert fill_gap(history, evaluations, 10.0, every) == (history, evaluations)  # on time
    assert fill_gap(history, evaluations, 14.0, every) == (history, evaluations)  # jitter, not a gap
    assert fill_gap(history, evaluations, 30.0, every) == (0b10111, 5)  # two missed: the last state twice
    assert fill_gap(history, evaluations, 1e6, every) == ((1 << 21) - 1, 21)  # a long outage: the window
    # the changes before the gap are pushed back to older, lighter places, and out
    assert percent_state_change(*fill_gap(history, evaluations, 60.0, every), 21) < \
        percent_state_change(history, evaluations, 21)


def test_evaluations_missed_while_alertd_was_down_do_not_make_a_series_flap():
    # fire/resolve every 3 evaluations, then a gap of 10 evaluations: with the gap counted as
    # unchanged evaluations the next change is not a flap; treated as neighbours it would be
    every = dataclasses.replace(FLAP, interval=10.0)
    for flapping, expected in ((every, ["firing"]), (FLAP, ["flapping"])):
        t, r = AlertTracker(), rule(flapping=flapping)
        assert run(t, r, "AAAOOOAAAOO") == ["firing", "resolved", "firing", "resolved"]
        assert run(t, r, "A", t0=200) == expected


def test_the_downtime_of_a_restart_is_a_gap_in_the_flap_history(write_config, registry, clock, tmp_path):
    text = BASE.replace("flapping: false", "flapping: {low: 10, high: 20}")
    for down, expected in ((0, ["flapping"]), (120, ["firing"])):
        shop = Shop(write_config, registry, clock, _dir(tmp_path / str(down)), text)
        try:
            kinds = [tr.kind for v in (95, 10, 95, 10) for tr in shop.advance(5, {"a": v}).transitions]
            assert kinds == ["firing", "resolved", "firing", "resolved"]
            shop.restart(text)
            clock.advance(down)  # alertd was down this long: 24 polls of 5 s missed
            assert [tr.kind for tr in shop.advance(5, {"a": 95}).transitions] == expected
        finally:
            shop.close()



def test_the_flap_gap_is_measured_in_data_time_across_a_restart(write_config, registry, clock, tmp_path):
    # a source whose data time is ahead of the daemon's clock (a host's clock drifting by
    # 2 minutes, within the future tolerance; the simulator at speed runs far ahead): the
    # stored last evaluation is data time, so a quick restart is no gap
    text = BASE.replace("flapping: false", "flapping: {low: 10, high: 20}")
    shop = Shop(write_config, registry, clock, tmp_path, text)

    def feed(value):
        clock.advance(5)
        sample = Sample("cpu", make_labels({"host": "a"}), clock.now() + 120, float(value))
        result = shop.engine.ingest("app", [sample])
        shop.flush()
        return [tr.kind for tr in result.transitions]
    try:
        assert [k for v in (95, 10, 95, 10) for k in feed(v)] == ["firing", "resolved", "firing", "resolved"]
        shop.restart(text)
        assert feed(95) == ["flapping"]
    finally:
        shop.close()

# -- no data and missing series -------------------------------------------------------------
NODATA = BASE.replace("    flapping: false\n", "    flapping: false\n    no_data: POLICY\n    for: 20s\n")


@pytest.mark.parametrize("policy", ["alerting", "ok", "keep_state"])
def test_no_data_policies(write_config, registry, clock, tmp_path, policy):
    shop = Shop(write_config, registry, clock, tmp_path, NODATA.replace("POLICY", policy))
    try:
        shop.feed({"a": 95, "b": 10})
        shop.advance(20, {"a": 95, "b": 10})  # a fires after `for`
        assert shop.incident("a").state == "firing"
        for _ in range(3):
            shop.clock.advance(10)
            shop.engine.source_failed("app", "ConnectError: connection refused")
        a, b = shop.incident("a"), shop.incident("b")
        if policy == "alerting":
            assert a.state == "firing" and a.cause == "no_data" and "connection refused" in a.reason
            assert b.state == "firing" and b.cause == "no_data"  # pending at the first failure, fired after 20s
        elif policy == "ok":
            assert a.state == "resolved" and a.resolution == "no_data" and b is None
        else:
            assert a.state == "firing" and a.cause == "anomaly" and b is None
        shop.advance(10, {"a": 10, "b": 10})  # data is back and normal: everything resolves
        assert shop.store.incidents.open() == []
    finally:
        shop.close()


def test_a_rule_that_never_saw_data_gets_one_no_data_incident(write_config, registry, clock, tmp_path):
    shop = Shop(write_config, registry, clock, tmp_path, NODATA.replace("POLICY", "alerting"))
    try:
        for _ in range(3):
            shop.clock.advance(10)
            shop.engine.source_failed("app", "the poll returned no samples")
        (incident,) = shop.store.incidents.open()
        assert incident.labels == {} and incident.state == "firing" and incident.cause == "no_data"
        shop.advance(10, {"a": 10})
        assert shop.store.incidents.open() == []
    finally:
        shop.close()


def test_a_series_missing_from_two_polls_resolves(write_config, registry, clock, tmp_path):
    shop = Shop(write_config, registry, clock, tmp_path)
    try:
        shop.advance(5, {"a": 95, "b": 95})
        shop.advance(5, {"b": 95})
        assert shop.incident("a").state == "firing"  # one missed poll is tolerated
        r = shop.advance(5, {"b": 95})
        assert [(t.kind, t.incident.labels["host"]) for t in r.transitions] == [("resolved", "a")]
        assert shop.incident("a").resolution == "series_missing" and shop.incident("b").state == "firing"
    finally:
        shop.close()


def test_keep_firing_for_also_covers_a_missing_series(write_config, registry, clock, tmp_path):
    shop = Shop(write_config, registry, clock, tmp_path,
                BASE.replace("    flapping: false\n", "    flapping: false\n    keep_firing_for: 1m\n"))
    try:
        shop.advance(5, {"a": 95, "b": 95})
        for _ in range(5):
            shop.advance(10, {"b": 95})
        assert shop.incident("a").state == "firing"  # 50s since its last anomalous point
        shop.advance(10, {"b": 95})
        shop.advance(10, {"b": 95})
        assert shop.incident("a").state == "resolved"
    finally:
        shop.close()


def _dir(path):
    path.mkdir()
    return path


def test_the_gap_interval_is_in_data_time_so_a_simulator_at_speed_still_flaps(write_config, registry):
    """The shop simulator polls every 2 s of the daemon's clock, 2 minutes of shop time: its
    verdicts are 120 s apart. Counted in `every` (2 s), each of them would look like a gap of
    59 missed evaluations and wash the flap history out: the demo's rules would never flap."""
    from configs import config_text
    from configs import rule as config_rule

    from alertd.config.load import load_config

    text = config_text(sources={"app": {"type": "test_list", "every": "10s"},
                                "shop": {"type": "shop_sim", "every": "2s", "speed": 60, "step": "2m"}},
                       rules=[config_rule("cpu_high"), config_rule("orders", source="shop", series="orders_per_minute")])
    config = load_config(write_config(text), registry, environ={})
    flap = {r.name: r.flapping for r in config.rules}
    assert flap["cpu_high"].interval == 10.0 and flap["orders"].interval == 120.0
    # sim-time verdicts 120 s apart: fire/resolve churn is called flapping, as without gaps
    t, r = AlertTracker(), rule(flapping=flap["orders"])
    assert run(t, r, "AAAOOOAAAOOOA", step=120.0)[-1] == "flapping"
