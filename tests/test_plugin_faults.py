"""Plugin faults: a source that raises, one that hangs, one that leaks memory, a detector that
raises and a notifier that hangs are each isolated and reported (log, metric, meta-incident);
the good source, the good rule and the good integration carry on.

In-process on the fake clock (the fixture plugins are tests/plugins/faulty.py), and once as
the real daemon with its real scheduler: the good source keeps polling while the bad ones fail.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys

from configs import config_text, rule
from daemon_process import ROOT, DaemonProcess
from source_helpers import counter
from structlog.testing import capture_logs

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels

PLUGINS = ROOT / "tests" / "plugins"

CONFIG = config_text(
    plugin_dirs=[str(PLUGINS)], shutdown_timeout="1s",
    sources={"good": {"type": "test_list", "every": "10s"}, "raising": {"type": "test_raising", "every": "10s"},
             "hanging": {"type": "test_hanging", "every": "10s", "timeout": "200ms"},
             "leaking": {"type": "test_leaking", "every": "10s"}},
    rules=[rule("cpu_high", source="good"),
           rule("cpu_broken", source="good", detector={"type": "test_raising"})],
    receivers={"both": [{"type": "test_hanging"}, {"type": "test_record"}]},
    routes={"receiver": "both", "group_by": ["..."], "group_wait": "0s", "group_interval": "10s"})


def test_failing_plugins_are_isolated_counted_and_raise_meta_incidents(write_config, registry, tmp_path, clock):
    config = load_config(write_config(CONFIG), registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        sent = sys.modules[type(d.notifiers[("both", 1)]).__module__].SENT
        sent.clear()
        loop = asyncio.get_running_loop()
        took = []
        with capture_logs() as logs:
            for step in range(4):  # every source is due each 10 s step, as the scheduler runs them
                d.sources["good"].pending = [Sample("cpu", make_labels({"host": "a"}), clock.now(), 95.0)]
                await asyncio.gather(*(d.poll(name) for name in ("good", "raising", "hanging", "leaking")))
                started = loop.time()
                await d.pass_once()
                took.append(loop.time() - started)
                clock.advance(10)
        open_incidents = sorted((i.rule, dict(i.labels).get("source") or dict(i.labels).get("rule") or "",
                                 i.state) for i in d.store.incidents.open())
        rows = d.store.outbox.rows()
        result = (logs, open_incidents, rows, list(sent), took, d.metrics,
                  d.store.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        await d.drain()
        return result

    logs, incidents, rows, sent, took, metrics, samples = asyncio.run(main())
    assert ("cpu_high", "", "firing") in incidents  # the good rule fired despite its broken sibling
    assert ("alertd_source_failing", "raising", "firing") in incidents
    assert ("alertd_source_failing", "hanging", "firing") in incidents
    assert ("alertd_detector_failing", "cpu_broken", "firing") in incidents
    assert not any(i[1] in ("good", "leaking") for i in incidents)  # the healthy ones are not reported
    assert counter(metrics, "source_errors", "raising", "error") == 4
    assert counter(metrics, "source_errors", "hanging", "timeout") == 4
    assert counter(metrics, "source_polls", "leaking") == 4 and counter(metrics, "source_polls", "good") == 4
    assert samples == 8  # 4 polls each of good and leaking
    assert counter(metrics, "detector_errors", "cpu_broken") == 4
    # the good integration got every notice; the hanging one is cut off and retried each time
    assert {n.incidents[0].rule for n in sent} == {"cpu_high", "alertd_source_failing", "alertd_detector_failing"}
    hung = [r for r in rows if r["integration"] == 0]
    assert hung and all(r["status"] == "pending" for r in hung)
    assert all("did not finish within 1.4s" in (r["last_error"] or "") for r in hung if r["attempts"])
    assert max(took) < 10  # a pass waits at most the hanging notifier's limit, never forever
    events = {e["event"] for e in logs}
    assert {"source_failed", "detector_failed", "notification_error"} <= events


def test_the_real_daemon_keeps_polling_the_good_source_while_the_others_fail(tmp_path):
    config = tmp_path / "alertd.yaml"
    config.write_text(config_text(
        plugin_dirs=[str(PLUGINS)], store=str(tmp_path / "alertd.db"),
        sources={"good": {"type": "test_leaking", "every": "200ms", "kib": 1},
                 "raising": {"type": "test_raising", "every": "200ms"},
                 "hanging": {"type": "test_hanging", "every": "200ms", "timeout": "300ms"},
                 "leaking": {"type": "test_leaking", "every": "200ms", "kib": 4096}},
        rules=[rule("polls", source="good", series="leak_polls", detector={"type": "test_raising"})],
        receivers={"console": [{"type": "console"}]}, routes={"receiver": "console"}))
    with DaemonProcess(config, env={"PYTHONPATH": str(ROOT)}, extra_args=["--log-level", "debug"]) as d:
        d.wait_event("incident_fired", rule="alertd_source_failing", labels={"source": "hanging"}, timeout=30)
        d.wait_event("incident_fired", rule="alertd_source_failing", labels={"source": "raising"}, timeout=30)
        d.wait_event("incident_fired", rule="alertd_detector_failing", labels={"rule": "polls"}, timeout=30)
        timeouts = d.count("source_failed", source="hanging", reason="timeout")
        good = d.count("source_polled", source="good")
        leaking = d.count("source_polled", source="leaking")
        assert d.stop() == 0
    # three timeouts of 300 ms took at least 0.9 s: a 200 ms source that was not held up by
    # them polled at least three times meanwhile (were the loop blocked, it would be 0)
    assert timeouts >= 3 and good >= 3 and leaking >= 3


HUNG_CONFIG = config_text(
    plugin_dirs=[str(PLUGINS)], detector_timeout="200ms",
    sources={"good": {"type": "test_list", "every": "10s"}},
    rules=[rule("cpu_high", source="good"), rule("cpu_stuck", source="good", detector={"type": "test_hanging"})])


def test_a_hung_detector_is_abandoned_skipped_until_it_returns_and_reported(write_config, registry, tmp_path, clock):
    config = load_config(write_config(HUNG_CONFIG), registry,
                         environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        hanging = type(d.engine.runtimes()[1].detector)
        hanging.RELEASE.clear(), hanging.RETURNED.clear(), hanging.CALLS.clear()

        async def poll(value):
            d.sources["good"].pending = [Sample("cpu", make_labels({"host": "a"}), clock.now(), value)]
            await d.poll("good")
            clock.advance(10)

        def open_incidents():
            return sorted((i.rule, i.state) for i in d.store.incidents.open())

        try:
            for _ in range(3):  # the first call hangs; the next two ticks skip the rule
                await poll(95.0)
            stuck = (list(hanging.CALLS), d.engine.scorer.stuck(), open_incidents())
            hanging.RELEASE.set()
            assert hanging.RETURNED.wait(5)
            await poll(50.0)  # the stuck call is over: the rule scores again
            after = (list(hanging.CALLS), d.engine.scorer.stuck(), open_incidents())
        finally:
            hanging.RELEASE.set()
            await d.drain()
        return stuck, after, d.metrics

    stuck, after, metrics = asyncio.run(main())
    calls, stuck_rules, incidents = stuck
    assert calls == [1] and stuck_rules == ["cpu_stuck"]  # one call; no pile-up behind it
    assert ("alertd_detector_failing", "firing") in incidents
    assert ("cpu_high", "firing") in incidents  # the other rule of the same source went on
    assert counter(metrics, "detector_errors", "cpu_stuck") == 3
    calls, stuck_rules, incidents = after
    assert calls == [1, 1] and stuck_rules == []
    assert not any(rule == "alertd_detector_failing" for rule, _ in incidents)


OVERLAP_CONFIG = config_text(
    plugin_dirs=[str(PLUGINS)], detector_timeout="10s",
    sources={"good": {"type": "test_list", "every": "10s"}},
    rules=[rule("cpu_slow", source="good", detector={"type": "test_hanging"})],
    routes={"receiver": "rec"})


async def _daemon_with_a_hanging_detector(text, write_config, registry, tmp_path, clock):
    """An opened daemon of `text`, whose first rule has the hanging fixture detector (reset)."""
    config = load_config(write_config(text), registry, environ={})
    d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
    await d.open()
    hanging = type(d.engine.runtimes()[0].detector)
    for event in (hanging.STARTED, hanging.RELEASE, hanging.RETURNED):
        event.clear()
    hanging.CALLS.clear()
    return d, hanging


def test_a_poll_stores_its_samples_while_the_detector_scores(write_config, registry, tmp_path, clock):
    """The tick's insert runs beside the score call (both mostly outside the GIL), not before
    it: the detector here answers only once the poll's samples have been written."""
    async def main():
        d, hanging = await _daemon_with_a_hanging_detector(OVERLAP_CONFIG, write_config, registry, tmp_path, clock)
        append, beside = d.store.samples.append, []

        def append_beside_the_call(*args, **kwargs):
            beside.append(hanging.STARTED.wait(5))  # the score call is under way
            append(*args, **kwargs)
            hanging.RELEASE.set()  # only now may it answer

        d.store.samples.append = append_beside_the_call
        try:
            d.sources["good"].pending = [Sample("cpu", make_labels({"host": "a"}), clock.now(), 42.0)]
            await d.poll("good")
            stored = d.store.samples.recent(["cpu{host=\"a\"}"], 5)
        finally:
            hanging.RELEASE.set()
            await d.drain()
        return beside, list(hanging.CALLS), stored, d.metrics

    beside, calls, stored, metrics = asyncio.run(main())
    assert beside == [True] and calls == [1]
    assert list(stored['cpu{host="a"}'][1]) == [42.0]
    assert counter(metrics, "detector_errors", "cpu_slow") == 0


STORE_FAILS_CONFIG = config_text(
    plugin_dirs=[str(PLUGINS)], detector_timeout="200ms",
    sources={"stuck": {"type": "test_list", "every": "10s"}, "fine": {"type": "test_list", "every": "10s"}},
    rules=[rule("cpu_stuck", source="stuck", detector={"type": "test_hanging"}), rule("cpu_high", source="fine")],
    routes={"receiver": "rec"})


def test_a_store_error_beside_a_hung_call_leaves_the_hung_rule_skipped_and_others_scoring(
        write_config, registry, tmp_path, clock):
    async def main():
        d, hanging = await _daemon_with_a_hanging_detector(STORE_FAILS_CONFIG, write_config, registry, tmp_path,
                                                           clock)
        append = d.store.samples.append

        def failing_append(*args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")

        try:
            with capture_logs() as logs:
                d.store.samples.append = failing_append
                d.sources["stuck"].pending = [Sample("cpu", make_labels({"host": "a"}), clock.now(), 50.0)]
                await d.poll("stuck")  # the insert fails while cpu_stuck's call hangs: the tick fails
                d.store.samples.append = append
                clock.advance(10)
                d.sources["fine"].pending = [Sample("cpu", make_labels({"host": "b"}), clock.now(), 95.0)]
                await d.poll("fine")  # another source's rule: scored, not queued behind the hung call
            state = (d.engine.scorer.stuck(), sorted((i.rule, i.state) for i in d.store.incidents.open()))
        finally:
            hanging.RELEASE.set()
            await d.drain()
        return logs, state, d.metrics

    logs, (stuck, incidents), metrics = asyncio.run(main())
    assert [e["source"] for e in logs if e["event"] == "tick_failed"] == ["stuck"]
    assert stuck == ["cpu_stuck"]
    assert ("cpu_high", "firing") in incidents
    assert counter(metrics, "detector_errors", "cpu_high") == 0
