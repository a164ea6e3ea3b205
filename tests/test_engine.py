"""The tick through the engine: store, detect, incidents, outbox, with a fake clock."""

from __future__ import annotations

import asyncio
import math

import pytest
from configs import config_text, rule
from structlog.testing import capture_logs

from alertd.config.load import load_config
from alertd.delivery.worker import OutboxWorker
from alertd.engine.tick import Engine
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Sample, make_labels
from alertd.store import Store

CONFIG = config_text(
    http=None, sources={"app": {"type": "test_list", "every": "5s"}},
    rules=[rule("high", series='cpu{host=~".+"}', severity="critical", **{"for": "10s", "clear_for": "10s"})],
    receivers={"console": [{"type": "console"}]},
    routes={"receiver": "console", "group_wait": "0s", "group_interval": "5s"})  # group_wait 0s: notify at once



def cpu(host, ts, value):
    return Sample("cpu", make_labels({"host": host}), ts, value)


def tick(engine, samples):
    """One poll as the daemon runs it: the tick, then the group timer's flush of due groups."""
    result = engine.ingest("app", samples)
    engine.router.flush_due()
    return result


@pytest.fixture
def setup(write_config, registry, clock, tmp_path):
    config = load_config(write_config(CONFIG), registry, environ={})
    store = Store(tmp_path / "t.db")

    def engine():
        return Engine(config, registry, store, clock, Metrics(), get_logger())

    yield config, store, engine
    store.close()


def test_for_delays_firing_and_repeats_do_not_renotify(setup, clock):
    _, store, make = setup
    engine = make()
    t = clock.now()
    assert tick(engine, [cpu("a", t, 95), cpu("b", t, 10)]).transitions == []
    assert [i.state for i in store.incidents.open()] == ["pending"]
    r = tick(engine, [cpu("a", t + 5, 96), cpu("b", t + 5, 10)])
    assert r.transitions == []
    r = tick(engine, [cpu("a", t + 10, 97), cpu("b", t + 10, 10)])
    assert [tr.kind for tr in r.transitions] == ["firing"] and r.grouped
    assert store.outbox.pending_count() == 1  # flushed at once (group_wait 0)
    for k in range(3, 6):
        r = tick(engine, [cpu("a", t + 5 * k, 99)])
        assert r.transitions == []
    (incident,) = store.incidents.open()
    assert incident.count == 6 and incident.last_value == 99 and incident.state == "firing"
    assert incident.labels == {"host": "a"}
    assert store.outbox.pending_count() == 1


def test_pending_that_clears_never_notifies(setup, clock):
    _, store, make = setup
    engine = make()
    t = clock.now()
    tick(engine, [cpu("a", t, 95)])
    tick(engine, [cpu("a", t + 5, 50)])
    assert store.incidents.open() == [] and store.outbox.pending_count() == 0


def test_clear_for_is_hysteresis_before_resolve(setup, clock):
    _, store, make = setup
    engine = make()
    t = clock.now()
    for k in range(3):
        tick(engine, [cpu("a", t + 5 * k, 95)])
    assert tick(engine, [cpu("a", t + 15, 10)]).transitions == []
    assert tick(engine, [cpu("a", t + 20, 95)]).transitions == []  # back: still the same incident
    assert tick(engine, [cpu("a", t + 25, 10)]).transitions == []
    r = tick(engine, [cpu("a", t + 35, 10)])
    assert [tr.kind for tr in r.transitions] == ["resolved"]
    clock.advance(5)  # the resolved notice goes out at the group's next group_interval tick
    engine.router.flush_due()
    assert [row["kind"] for row in store.outbox.rows()] == ["firing", "resolved"]
    assert len(store.incidents.list(include_closed=True)) == 1


def test_bad_samples_are_skipped_and_counted(setup, clock):
    _, store, make = setup
    engine = make()
    t = clock.now()
    r = tick(engine, [cpu("a", t, math.nan), cpu("a", t, None), "text", cpu("b", t, 5)])
    assert r.stored == 1 and r.skipped == 3
    assert engine.metrics.samples_skipped.labels("app", "not_finite")._value.get() == 1
    assert engine.metrics.samples_skipped.labels("app", "not_a_number")._value.get() == 1
    assert engine.metrics.samples_skipped.labels("app", "not_a_sample")._value.get() == 1


def test_out_of_order_points_are_skipped(setup, clock):
    _, store, make = setup
    engine = make()
    t = clock.now()
    tick(engine, [cpu("a", t, 10)])
    r = tick(engine, [cpu("a", t - 5, 95)])
    assert r.scored == 0 and store.incidents.open() == []


def test_restart_keeps_open_incidents_and_history(setup, clock):
    _, store, make = setup
    engine = make()
    t = clock.now()
    for k in range(3):
        tick(engine, [cpu("a", t + 5 * k, 95)])
    again = make()  # a new engine on the same store: as after a restart
    assert again.tracker.is_open(store.incidents.open()[0].fingerprint)
    r = again.ingest("app", [cpu("a", t + 15, 96)])
    assert r.transitions == [] and store.incidents.open()[0].count == 4


class FlakyNotifier:
    def __init__(self):
        self.sent, self.fail = [], True

    async def send(self, note):
        from alertd.base import RetryableError
        if self.fail:
            raise RetryableError("connection refused")
        self.sent.append(note)
        return "200 ok"


def test_unsent_outbox_row_is_sent_after_reopening_the_store(setup, clock, tmp_path):
    config, store, make = setup
    engine = make()
    t = clock.now()
    for k in range(3):
        tick(engine, [cpu("a", t + 5 * k, 95)])
    engine.router.flush_due()
    flaky = FlakyNotifier()
    dispatcher = OutboxWorker(store, {("console", 0): flaky}, clock, Metrics(), get_logger())
    assert asyncio.run(dispatcher.run_once()) == 0  # receiver down: stays in the outbox
    store.close()
    reopened = Store(tmp_path / "t.db")
    assert reopened.outbox.pending_count() == 1
    flaky.fail = False
    dispatcher = OutboxWorker(reopened, {("console", 0): flaky}, clock, Metrics(), get_logger())
    assert asyncio.run(dispatcher.run_once()) == 0  # not due yet: backoff
    clock.advance(600)
    assert asyncio.run(dispatcher.run_once()) == 1
    assert [n.kind for n in flaky.sent] == ["firing"] and reopened.outbox.pending_count() == 0
    assert asyncio.run(dispatcher.run_once()) == 0  # never twice
    reopened.close()


def test_backoff_grows_and_honours_retry_after(setup, clock):
    _, store, _ = setup
    import random
    d = OutboxWorker(store, {}, clock, Metrics(), get_logger(), base_delay=2, max_delay=60,
                   rng=random.Random(1))
    delays = [d.backoff(a) for a in range(8)]
    assert all(1 <= x <= 60 for x in delays) and delays[5] > delays[0]
    assert d.backoff(0, retry_after=30) == 30


def test_a_poll_of_other_series_is_selected_and_keyed_afresh():
    """The key and selection caches of a poll of the same series must not leak into a poll
    of other series (or of the same series in another order)."""
    from alertd.engine.reuse import poll_keys as _keys
    from alertd.engine.rule_runtime import RuleRuntime
    from alertd.matchers import parse_selector

    class Rule:
        name, series = "r", parse_selector('cpu{host=~"a|b"}')

    class Detector:
        window = 1

    rt, last = RuleRuntime(Rule(), Detector()), []

    def poll(*hosts):
        samples = [Sample("cpu", make_labels({"host": h}), 1.0, 1.0) for h in hosts]
        keys = _keys(samples, last)
        return keys, rt.select(samples, keys)[1]

    keys, picked = poll("a", "b")
    assert picked == keys == ['cpu{host="a"}', 'cpu{host="b"}']
    keys, picked = poll("a", "c", "b")
    assert keys == ['cpu{host="a"}', 'cpu{host="c"}', 'cpu{host="b"}']
    assert picked == ['cpu{host="a"}', 'cpu{host="b"}']
    assert poll("a", "c", "b")[1] == picked  # the same series again: the same answer
    keys, picked = poll("c", "a")
    assert keys == ['cpu{host="c"}', 'cpu{host="a"}'] and picked == ['cpu{host="a"}']


def test_a_tick_that_fails_at_its_commit_leaves_the_windows_as_the_store_has_them(setup, clock):
    """The source brings the points of a failed tick again (Source.committed): they must be
    scored then, not skipped as repeated because the failed tick had pushed them already."""
    _, store, make = setup
    engine = make()
    t = clock.now()
    tick(engine, [cpu("a", t, 10), cpu("b", t, 10)])
    real_commit = engine.alerting.commit

    def disk_full(*args):
        raise OSError("database or disk is full")
    engine.alerting.commit = disk_full  # after scoring and pushing: the last step of the tick
    with pytest.raises(OSError):
        tick(engine, [cpu("a", t + 5, 95), cpu("b", t + 5, 10)])
    engine.alerting.commit = real_commit
    rt = engine.rules_by_source["app"][0]
    assert list(rt.windows.last_ts[:2]) == [t, t] and list(rt.windows.seen[:2]) == [1, 1]
    result = tick(engine, [cpu("a", t + 5, 95), cpu("b", t + 5, 10)])  # the same points again
    assert result.scored == 2 and result.skipped == 0
    assert [(i.labels["host"], i.state) for i in store.incidents.open()] == [("a", "pending")]


def test_a_point_stamped_far_ahead_is_refused_so_later_points_are_not_out_of_order(setup, clock):
    _, store, make = setup
    engine = make()
    t = clock.now()
    with capture_logs() as logs:
        first = tick(engine, [cpu("a", 4_102_444_800.0, 10), cpu("b", t + 200, 10)])  # 2100-01-01; 200 s: drift
        later = [tick(engine, [cpu("a", t + 5 * i, 10), cpu("b", t + 200 + 5 * i, 10)]) for i in range(1, 4)]
    assert (first.stored, first.skipped) == (1, 1)
    assert all(r.stored == 2 and r.skipped == 0 and r.scored == 2 for r in later)
    skipped = [e for e in logs if e["event"] == "samples_skipped"]
    assert [(e["reason"], e["count"]) for e in skipped] == [("future_timestamp", 1)]
    assert engine.metrics.samples_skipped.labels("app", "future_timestamp")._value.get() == 1


def test_a_burst_of_one_series_is_one_batch_and_one_log_line(setup, clock):
    """190,000 points of one series pushed without `ts` once made 190,000 detector calls
    (7.5 s with the loop frozen) and 190,000 log lines."""
    _, store, make = setup
    engine = make()
    t = clock.now()
    calls = []
    rt = engine.rules_by_source["app"][0]
    score = rt.detector.score
    rt.detector.score = lambda batch: calls.append(len(batch)) or score(batch)
    with capture_logs() as logs:
        same_ts = tick(engine, [cpu("a", t, float(i)) for i in range(20_000)])
        distinct = tick(engine, [cpu("a", t + 1 + i / 1000, 95.0) for i in range(1_000)])
    assert len(calls) == 1 + 100 and same_ts.scored == 1 and distinct.scored == 100
    # the store and the windows keep the last value of a repeated timestamp
    assert store.samples.recent(['cpu{host="a"}'], 1, before=t + 1)['cpu{host="a"}'][1][-1] == 19_999.0
    skipped = [(e["reason"], e["count"]) for e in logs if e["event"] == "samples_skipped"]
    assert skipped == [("repeated_timestamp", 19_999), ("too_many_points", 900)]
