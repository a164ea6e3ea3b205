"""The daemon survives misbehaving sources: logged, counted, other sources unaffected."""

from __future__ import annotations

import asyncio

from configs import NEVER, config_text, rule

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels

CONFIG = config_text(
    http=None, routes=None,
    sources={"good": {"type": "test_list", "cron": NEVER}, "bad": {"type": "test_list", "cron": NEVER, "timeout": 0.2}},
    rules=[rule("g", source="good", series="v", limit=10), rule("b", source="bad", series="v", limit=10)],
    receivers={"r": [{"type": "test_record"}]})


class Hang:
    async def collect(self):
        await asyncio.Event().wait()


def test_a_raising_hanging_or_junk_source_does_not_stop_the_others(write_config, registry, clock, tmp_path):
    config = load_config(write_config(CONFIG), registry, environ={})

    async def scenario():
        daemon = Daemon(config, registry, store_path=tmp_path / "d.db", clock=clock)
        await daemon.start()
        good, bad = daemon.sources["good"], daemon.sources["bad"]
        t = clock.now()
        bad.pending = RuntimeError("connection reset by peer")
        good.pending = [Sample("v", make_labels({}), t, 50.0)]
        await daemon.poll("bad")
        await daemon.poll("good")
        bad.pending = [Sample("v", (), t, float("nan")), Sample("v", (), t, "text"), "junk"]
        await daemon.poll("bad")
        daemon.sources["bad"] = Hang()
        await daemon.poll("bad")
        clock.advance(5)
        good.pending = [Sample("v", make_labels({}), t + 5, 60.0)]
        await daemon.poll("good")
        incidents = daemon.store.incidents.open()
        m = daemon.metrics
        bad.pending = []
        daemon.sources["bad"] = bad
        await daemon.poll("bad")
        counts = {reason: m.source_errors.labels("bad", reason)._value.get()
                  for reason in ("error", "timeout", "empty", "unusable")}
        health = daemon.engine.source_health["bad"]
        await daemon.drain()
        await daemon.close()
        return incidents, counts, health, m

    incidents, counts, health, metrics = asyncio.run(scenario())
    # three failed polls in a row: the failing source is a meta-incident too (alertd.daemon.plugin_health)
    assert sorted((i.rule, i.state, i.count) for i in incidents) == [
        ("alertd_source_failing", "firing", 1), ("g", "firing", 2)]
    assert counts == {"error": 1, "timeout": 1, "empty": 1, "unusable": 1}
    assert metrics.samples_skipped.labels("bad", "not_finite")._value.get() == 1
    assert health.consecutive_errors == 4 and health.last_error == "the poll returned no samples"
