"""Series belong to their source, and series silent past `retention` are forgotten.

Before issue 16 two sources emitting the same metric name and labels shared one stored
series (the second's back-fill was skipped as "already stored"), and series rows and the
engine's window rows never left the store or memory: a source with churning labels grew both
without bound.
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import sqlite_utils
from configs import config_text, rule

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, Status, make_labels, series_key
from alertd.store import Store
from alertd.store.migrations import migrations


def cpu(host: str, ts: float, value: float = 1.0) -> Sample:
    return Sample("cpu", make_labels({"host": host}), ts, value)


def test_two_sources_with_the_same_series_keep_two_series():
    store = Store()
    with store.atomic():
        store.samples.append([cpu("a", t, 1.0) for t in range(10)], "app")
        store.samples.append([cpu("a", t, 2.0) for t in range(5, 15)], "other")
    key = 'cpu{host="a"}'
    assert sorted((r["source"], r["key"]) for r in store.samples.series()) == [("app", key), ("other", key)]
    app = store.samples.recent([key], 100, source="app")[key]
    other = store.samples.recent([key], 100, source="other")[key]
    assert list(app[0]) == list(range(10)) and set(app[1]) == {1.0}
    assert list(other[0]) == list(range(5, 15)) and set(other[1]) == {2.0}
    assert list(store.samples.history(key, source="other")[0]) == list(range(5, 15))
    assert store.samples.sources_of(key) == ["app", "other"]


def test_a_rule_is_seeded_from_its_own_sources_series(write_config, registry, tmp_path, clock):
    config = load_config(write_config(config_text(
        sources={"app": {"type": "test_list", "cron": "0 0 1 1 *"}, "other": {"type": "test_list", "cron": "0 0 1 1 *"}},
        rules=[{"name": "cpu_odd", "source": "other", "series": "cpu", "detector": {"type": "zscore", "window": 20}}])),
        registry, environ={})
    store = Store(tmp_path / "alertd.db")
    now = clock.now()
    with store.atomic():  # history of the same series name and labels from the other source
        store.samples.append([cpu("a", now - 100 + t, 500.0) for t in range(10)], "app")
        store.samples.append([cpu("a", now - 100 + t, 5.0) for t in range(10)], "other")
    store.close()

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        d.sources["other"].pending = [cpu("a", now, 6.0)]
        await d.poll("other")
        rt = d.engine.rules_by_source["other"][0]
        history = rt.windows.values[0].copy()
        await d.drain()
        return history

    history = asyncio.run(main())
    assert set(history[np.isfinite(history)]) == {5.0, 6.0}  # never the other source's 500s


def test_an_old_store_migrates_on_start_keeping_every_sample(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="m003_series_of_a_source")  # a store of the last release
    db["series"].insert_all([{"id": 1, "key": 'cpu{host="a"}', "name": "cpu", "labels": json.dumps({"host": "a"}),
                              "source": "app", "first_ts": 100.0},
                             {"id": 2, "key": "up", "name": "up", "labels": "{}", "source": "probe",
                              "first_ts": 100.0}])
    db["samples"].insert_all([{"ts": 100.0 + i, "series_id": 1 + i % 2, "value": float(i)} for i in range(20)])
    db.close()
    before = time.time()
    store = Store(path)
    rows = {r["key"]: r for r in store.samples.series()}
    assert rows['cpu{host="a"}']["id"] == 1 and rows["up"]["id"] == 2
    # (counted as polled at the upgrade: a series silent since is dropped one retention later)
    assert before <= rows['cpu{host="a"}']["last_ts"] <= time.time() and rows["up"]["source"] == "probe"
    ts, values = store.samples.history('cpu{host="a"}', source="app")
    assert list(ts) == [100.0 + i for i in range(0, 20, 2)]
    with store.atomic():  # the same key from another source is a series of its own now
        store.samples.append([cpu("a", 200.0, 7.0)], "other")
    assert store.samples.sources_of('cpu{host="a"}') == ["app", "other"]
    assert len(store.samples.history('cpu{host="a"}', source="app")[0]) == 10
    store.close()


def test_series_silent_past_retention_leave_the_store_and_the_rules_windows(write_config, registry, tmp_path, clock):
    config = load_config(write_config(config_text(
        retention="10m", sources={"app": {"type": "test_list", "every": "1m"}},
        rules=[rule("cpu_high", series="cpu", limit=90, keep_firing_for="1h"),
               {"name": "cpu_absent", "source": "app", "series": "cpu", "detector": {"type": "absent", "after": "1h"}}])),
        registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        src = d.sources["app"]
        src.pending = [cpu(f"h{i}", clock.now(), 99.0 if i == 9 else 1.0) for i in range(10)]
        await d.poll("app")  # h9 fires (above 90); keep_firing_for keeps its incident open an hour
        for _ in range(12):  # then only h0-h4 report, for 12 minutes
            clock.advance(60)
            src.pending = [cpu(f"h{i}", clock.now()) for i in range(5)]
            await d.poll("app")
        await d.prune()
        rules = {rt.rule.name: rt for rt in d.engine.runtimes()}
        out = {"store": sorted(r["key"] for r in d.store.samples.series()),
               "windows": {name: sorted(rt.windows.keys) for name, rt in rules.items()},
               "memory": sorted(rules["cpu_absent"].detector.memory.index),
               "fingerprints": len(rules["cpu_high"].fingerprints)}
        clock.advance(60)  # the windows were renumbered: the next poll still scores the right series
        src.pending = [cpu("h0", clock.now(), 95.0), *(cpu(f"h{i}", clock.now()) for i in range(1, 5))]
        await d.poll("app")
        out["open"] = sorted(dict(i.labels)["host"] for i in d.engine.tracker.open.values())
        await d.drain()
        return out

    out = asyncio.run(main())
    kept = [f'cpu{{host="h{i}"}}' for i in range(5)]
    # h5-h9 were silent for 12 minutes (retention 10m, and the minute by which the store may be
    # behind the polls): their rows went with their samples
    assert out["store"] == kept
    assert out["windows"]["cpu_high"] == sorted(kept + ['cpu{host="h9"}'])  # h9's incident is still open
    assert out["windows"]["cpu_absent"] == kept
    assert out["memory"] == kept and out["fingerprints"] == 6
    assert out["open"] == ["h0", "h9"]


def test_an_absent_rule_forgets_a_series_silent_past_retention_instead_of_firing_for_ever(
        write_config, registry, tmp_path, clock):
    # pods that go away for good: each fires its absent rule once, then is forgotten with the
    # rest of the series gone that long (before: firing for ever, its row, alert state and
    # group in memory; a churning source grew without bound)
    config = load_config(write_config(config_text(
        retention="10m", sources={"app": {"type": "test_list", "every": "1m"}},
        rules=[{"name": "cpu_absent", "source": "app", "series": "cpu", "detector": {"type": "absent", "after": "3m"}}],
        receivers={"pager": [{"type": "test_record"}]},
        routes={"receiver": "pager", "group_by": ["host"], "group_wait": "0s", "group_interval": "1s"})),
        registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        src = d.sources["app"]
        src.pending = [cpu(f"h{i}", clock.now()) for i in range(4)]
        await d.poll("app")
        states = []
        for minute in range(1, 16):  # h2 and h3 go away; h0 and h1 report every minute
            clock.advance(60)
            src.pending = [cpu(f"h{i}", clock.now()) for i in range(2)]
            await d.poll("app")
            d.housekeeping()
            if minute % 5 == 0:
                await d.prune()
            states.append(sorted((dict(i.labels)["host"], i.state) for i in d.engine.tracker.open.values()))
        (rt,) = d.engine.runtimes()
        incidents = [(json.loads(labels)["host"], state, resolution) for labels, state, resolution in
                     d.store.db.execute("SELECT labels, state, resolution FROM incidents ORDER BY id").fetchall()]
        out = states, incidents, sorted(rt.windows.keys), sorted(d.engine.tracker.states)
        await d.drain()
        return out

    states, incidents, keys, tracked = asyncio.run(main())
    assert all(st == [("h2", "firing"), ("h3", "firing")] for st in states[3:9])  # silent for 3 minutes: absent
    assert states[-1] == []  # silent for longer than retention (10m): resolved, not firing for ever
    # one incident each, firing until forgotten (before: resolved as a missing series two polls
    # after it fired, fired again at the next check: a page every two minutes)
    assert incidents == [("h2", "resolved", "forgotten"), ("h3", "resolved", "forgotten")]
    assert keys == ['cpu{host="h0"}', 'cpu{host="h1"}']  # and dropped with the series gone that long
    assert tracked == []


def test_after_series_are_dropped_each_fingerprint_still_names_its_own_row(write_config, registry, tmp_path, clock):
    # drop_silent renumbers the window rows; the fingerprint -> row map the pages read (a
    # series' incident state, `series_of`) must follow, or it points at another series
    config = load_config(write_config(config_text(
        retention="10m", sources={"app": {"type": "test_list", "every": "1m"}},
        rules=[rule("cpu_high", series="cpu", limit=90)])), registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        src = d.sources["app"]
        src.pending = [cpu(f"h{i}", clock.now()) for i in range(6)]
        await d.poll("app")
        for _ in range(12):  # h0-h2 go silent
            clock.advance(60)
            src.pending = [cpu(f"h{i}", clock.now()) for i in range(3, 6)]
            await d.poll("app")
        await d.prune()
        (rt,) = d.engine.runtimes()
        rows = {rt.windows.keys[row]: row for fp, row in rt.row_of_fp.items()}
        named = [d.engine.series_of("cpu_high", fp)[0] for fp in rt.fingerprints]
        missed, status = rt.polls_missed().tolist(), rt.last_status[:3].tolist()
        await d.drain()
        return rt.windows.keys[:3], rows, named, missed, status

    keys, rows, named, missed, status = asyncio.run(main())
    assert list(keys) == [f'cpu{{host="h{i}"}}' for i in range(3, 6)]
    assert rows == {k: i for i, k in enumerate(keys)}  # each fingerprint maps to its own series' row
    assert named == list(keys)
    # so do the per-row verdicts and polls the rule's health reads (the kept series were in
    # every poll: not "no data", as the dropped ones' old rows would have said)
    assert missed == [0, 0, 0] and status == [Status.OK] * 3


def test_a_churning_source_leaves_nothing_behind_in_the_daemons_memory(write_config, registry, tmp_path, clock):
    from alertd.routing import notices

    config = load_config(write_config(config_text(
        retention="10m", sources={"app": {"type": "test_list", "every": "1m"}},
        rules=[rule("cpu_high", series="cpu", limit=90),
               {"name": "cpu_typical", "source": "app", "series": "cpu", "detector": {"type": "surprise"}},
               rule("mem_high", series="mem", limit=90)],  # matches none of the pods' series
        routes={"receiver": "rec", "group_wait": "0s", "group_interval": "1s", "group_by": ["pod"]})),
        registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        src, rules = d.sources["app"], {rt.rule.name: rt for rt in d.engine.runtimes()}
        for generation in range(100):  # 20 pods a minute, each with a new name (a deployment)
            clock.advance(60)
            src.pending = [Sample("cpu", make_labels({"pod": f"web-{generation}-{i}"}), clock.now(),
                                  99.0 if i == 0 else 1.0) for i in range(20)]
            await d.poll("app")
            d.group_timer.flush_due()  # a notice about the pod that fires
            assert not notices._LABELS_SEEN  # the flush's memo of labels went with it
            if generation % 10 == 9:
                await d.prune()
        surprise = rules["cpu_typical"].detector
        out = {"matches": len(rules["mem_high"]._matches), "surprise": len(surprise.index),
               "rows": len(surprise.state), "windows": len(rules["cpu_typical"].windows.keys),
               "series_keys": series_key.cache_info().currsize,
               "group_epochs": len(d.engine.router._epochs),
               "poll_times": len(d.store.samples.index.seen)}
        await d.drain()
        return out

    out = asyncio.run(main())
    assert out["matches"] <= 2 * 20 + 1000  # not the 2,000 keys the source ever sent
    assert out["surprise"] == out["windows"] <= 20 * 13  # the series of the last 10-13 minutes
    assert out["rows"] <= 20 * 24  # rows of dropped pods were reused, not added
    assert out["series_keys"] <= 2 * 20 * 13 + 1000  # the key cache let the dropped pods' keys go
    assert out["group_epochs"] <= 20  # and the router its groups (group_by: pod) that went
    assert out["poll_times"] <= 20 * 13  # the store's poll times are per live series, not per id ever
