"""What the alert stage leaves behind leaves the store after `history_retention`.

Before, nothing deleted resolved incidents, their history, sent notices, delivery attempts,
expired silences or notifier state: the 150-minute real-time soak's store grew from 202 to
1,856 pages (1,515 incidents of a blippy rule) while its samples stayed flat.
"""

from __future__ import annotations

import asyncio

import pytest
from configs import config_text, rule

from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels
from alertd.routing.silences import SilenceService

DAY = 86400.0


def cpu(host: str, ts: float, value: float) -> Sample:
    return Sample("cpu", make_labels({"host": host}), ts, value)


def _counts(db) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("incidents", "incident_history", "outbox", "deliveries", "silences", "notifier_state")}


def test_resolved_incidents_sent_notices_and_expired_silences_leave_after_history_retention(
        write_config, registry, tmp_path, clock):
    config = load_config(write_config(config_text(
        retention="1d", history_retention="30d", sources={"app": {"type": "test_list", "every": "1m"}},
        rules=[rule("cpu_high", limit=90)],
        routes={"receiver": "rec", "group_by": ["host"], "group_wait": "0s", "group_interval": "1m",
                "repeat_interval": "400d"})), registry, environ={})

    async def poll(d, values: dict[str, float]) -> None:
        d.sources["app"].pending = [cpu(h, clock.now(), v) for h, v in values.items()]
        await d.poll("app")
        await d.pass_once()  # flush the groups and deliver: notices sent, attempts recorded

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        db = d.store.db
        # day 0: "old" fires and resolves; "long" fires and stays firing; a silence a day long
        await poll(d, {"old": 99, "long": 99})
        SilenceService(d.store, clock).add(["host=quiet"], duration=DAY, author="test", comment="maintenance")
        with d.store.atomic():
            d.store.notifier_state.put("slack", "thread-of-old", {"ts": "1.2"}, clock.now())
        clock.advance(60)
        await poll(d, {"old": 1, "long": 99})
        clock.advance(60)
        await poll(d, {"old": 1, "long": 99})
        before = _counts(db)
        # 20 days later "new" fires and resolves; nothing is old enough yet
        clock.advance(20 * DAY)
        await poll(d, {"new": 99, "long": 99})
        clock.advance(60)
        await poll(d, {"new": 1, "long": 99})
        clock.advance(60)
        await poll(d, {"new": 1, "long": 99})
        mid = await d.prune_history()
        # 11 days more: day 0's resolved incident, notices, attempts, silence and thread id are past 30 days
        clock.advance(11 * DAY)
        await poll(d, {"new": 1, "long": 99})
        pruned = await d.prune_history()
        left = _counts(db)
        incidents = {(dict(i.labels)["host"], i.state) for i in d.store.incidents.list(include_closed=True)}
        history_of = {dict(i.labels)["host"]: len(d.store.history.of(i.id))
                      for i in d.store.incidents.list(include_closed=True)}
        pending = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
        metric = d.metrics.registry.get_sample_value("alertd_history_pruned_total", {"kind": "incidents"})
        again = await d.prune_history()
        await d.drain()
        return before, mid, pruned, left, incidents, history_of, pending, metric, again

    before, mid, pruned, left, incidents, history_of, pending, metric, again = asyncio.run(main())
    assert before["incidents"] == 2 and before["silences"] == 1 and before["notifier_state"] == 1
    assert before["outbox"] >= 2 and before["deliveries"] >= 2
    assert not any(mid.values()), mid  # nothing was 30 days old yet
    assert pruned["incidents"] == 1 and pruned["silences"] == 1 and pruned["notifier_state"] == 1
    assert pruned["notices"] >= 2 and pruned["delivery_attempts"] >= 2
    # the firing incident stays however old, and so does the recent resolved one, with their history
    assert incidents == {("long", "firing"), ("new", "resolved")}
    assert history_of["long"] >= 1 and history_of["new"] >= 2
    assert left["incident_history"] == sum(history_of.values())
    assert left["silences"] == 0 and left["notifier_state"] == 0 and pending == 0
    assert left["outbox"] >= 2 and left["deliveries"] >= 2  # the notices about "new" stay
    assert metric == 1.0 and not any(again.values())


def test_history_retention_must_be_positive(write_config, registry):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(config_text(history_retention="0s")), registry, environ={})
    assert "history_retention must be more than 0s" in str(err.value)


def test_a_resolved_incident_a_group_still_holds_stays_until_its_resolve_is_sent(write_config, registry, tmp_path, clock):
    # a group that flushes every 40 days: the resolve waits in the group past history_retention
    config = load_config(write_config(config_text(
        retention="1d", history_retention="30d", sources={"app": {"type": "test_list", "every": "1m"}},
        rules=[rule("cpu_high", limit=90)],
        routes={"receiver": "rec", "group_by": ["host"], "group_wait": "0s", "group_interval": "40d",
                "repeat_interval": "400d"})), registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        for value in (99, 1):
            d.sources["app"].pending = [cpu("a", clock.now(), value)]
            await d.poll("app")
            await d.pass_once()
            clock.advance(60)
        clock.advance(31 * DAY)
        held = await d.prune_history()
        kept = len(d.store.incidents.list(include_closed=True))
        clock.advance(10 * DAY)
        await d.pass_once()  # the group's next flush sends the resolve and lets the incident go
        gone = await d.prune_history()
        left = len(d.store.incidents.list(include_closed=True))
        await d.drain()
        return held, kept, gone, left

    held, kept, gone, left = asyncio.run(main())
    assert held["incidents"] == 0 and kept == 1
    assert gone["incidents"] == 1 and left == 0
