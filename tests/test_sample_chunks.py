"""Samples sealed into compressed per-series chunks (issue 20): reads see exactly what was
appended, before and after sealing; late rows win and merge; prune drops whole windows and
trims at read; old stores migrate keeping every sample; a failed seal loses nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlite_utils

from alertd.model import Sample, make_labels
from alertd.store import Store
from alertd.store.migrations import migrations
from alertd.store.sample_chunks import SPAN

T0 = 1_750_000_000.0 - 1_750_000_000.0 % SPAN  # a window boundary


def cpu(host: str, ts: float, value: float) -> Sample:
    return Sample("cpu", make_labels({"host": host}), ts, value)


def _fill(store, hosts=("a", "b", "c"), points=600, step=10.0, start=T0, seed=1):
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(0, 0.05, points)  # timestamps as a real clock stamps them
    out = {}
    for h_i, host in enumerate(hosts):
        ts = start + step * np.arange(points) + jitter + 0.001 * h_i
        values = np.round(rng.normal(50, 5, points), 2) if h_i % 2 == 0 else rng.normal(0, 1, points)
        out[host] = (ts, values)
    with store.atomic():
        for j in range(points):
            store.samples.append([cpu(h, float(out[h][0][j]), float(out[h][1][j])) for h in hosts], "app")
    return out


def _key(host):
    return cpu(host, 0, 0).key


def _same(a, b):
    return np.array_equal(np.asarray(a).view(np.int64), np.asarray(b).view(np.int64))


def test_sealed_chunks_read_back_bit_for_bit_through_recent_and_histories(tmp_path):
    store = Store(tmp_path / "a.db")
    data = _fill(store)
    keys = [_key(h) for h in data]
    before_recent = store.samples.recent(keys, 250)
    before_mid = store.samples.recent(keys, 100, before=T0 + 2500)
    before_hist = store.samples.histories(keys, start=T0 + 1000, end=T0 + 4000)
    with store.atomic():
        sealed = store.samples.seal_all()
    assert sealed == 3 * 540  # three complete windows of 180 points each; the last stays in the head
    assert store.db.execute("SELECT count(*) FROM samples").fetchone()[0] == 3 * 60
    assert store.db.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] == 3 * 3
    assert store.samples.count() == 3 * 600
    for k in keys:
        host = k.split('"')[1]
        ts, values = store.samples.history(k)
        assert _same(ts, data[host][0]) and _same(values, data[host][1])
        for got, want in ((store.samples.recent(keys, 250)[k], before_recent[k]),
                          (store.samples.recent(keys, 100, before=T0 + 2500)[k], before_mid[k])):
            assert got[2] == want[2] and _same(got[0], want[0]) and _same(got[1], want[1])
        hist = store.samples.histories(keys, start=T0 + 1000, end=T0 + 4000)[k]
        assert _same(hist[0], before_hist[k][0]) and _same(hist[1], before_hist[k][1])
    # a chunk is far smaller than the rows it replaced
    blob = store.db.execute("SELECT sum(length(data)) FROM sample_chunks").fetchone()[0]
    assert blob < 9 * 180 * 8 / 2
    store.close()


def test_odd_values_survive_sealing():
    store = Store()
    odd = [2.0 ** 63, -0.0, 1e-310, 1e308, -1e308, 0.1, 3.0]
    with store.atomic():
        store.samples.append([cpu("a", T0 + i, v) for i, v in enumerate(odd)], "app")
        store.samples.append([cpu("a", T0 + 2 * SPAN, 1.0)], "app")  # a later window: the first is complete
        store.db.execute("UPDATE samples SET value = NULL WHERE ts = ?", [T0 + 6])  # an old store's NULL
        head = store.samples.history(_key("a"))  # (SQLite's REAL keeps -0.0 as 0.0: so did the head)
        store.samples.seal_all()
    ts, values = store.samples.history(_key("a"))
    assert _same(ts, head[0]) and _same(values[:6], head[1][:6]) and np.isnan(values[6]) and values[7] == 1.0
    assert list(values[:6]) == odd[:6]
    assert store.db.execute("SELECT count(*) FROM samples").fetchone()[0] == 1
    store.close()


def test_a_late_row_wins_over_its_chunk_and_merges_into_it_at_the_next_seal():
    store = Store()
    data = _fill(store, hosts=("a",), points=400, step=10.0)
    ts = data["a"][0]
    with store.atomic():
        store.samples.seal_all()
        # a back-fill: a new point inside a sealed window, and a rewrite of a sealed point
        store.samples.append([cpu("a", T0 + 5.5, 99.0), cpu("a", float(ts[3]), -7.0)], "app")
    got_ts, got_values = store.samples.history(_key("a"))
    assert len(got_ts) == 401 and got_values[list(got_ts).index(ts[3])] == -7.0
    assert got_values[list(got_ts).index(T0 + 5.5)] == 99.0
    recent = store.samples.recent([_key("a")], 400)[_key("a")]
    assert _same(recent[0], got_ts[-400:]) and _same(recent[1], got_values[-400:])
    with store.atomic():
        assert store.samples.seal_all() == 2
    assert store.samples.count() == 401
    again = store.samples.history(_key("a"))
    assert _same(again[0], got_ts) and _same(again[1], got_values)
    store.close()


def test_prune_drops_whole_windows_trims_at_read_and_remembers_its_cutoff(tmp_path):
    store = Store(tmp_path / "p.db")
    _fill(store, hosts=("a", "b"), points=720)  # four windows
    with store.atomic():
        store.samples.seal_all()
    cutoff = T0 + SPAN + 600  # inside the second window
    steps = []
    with store.atomic():
        while step := store.samples.prune(cutoff, limit=100):
            steps.append(step)
    assert steps == [2 * 180]  # the first window, whole; the second reaches past the cutoff
    assert store.db.execute("SELECT min(start_ts) FROM sample_chunks").fetchone()[0] == T0 + SPAN
    ts, _ = store.samples.history(_key("a"))
    assert ts[0] >= cutoff and len(ts) == 720 - 240
    assert store.samples.span()[0] >= cutoff
    assert store.samples.recent([_key("a")], 1000)[_key("a")][2] == 720 - 240
    store.close()
    reopened = Store(tmp_path / "p.db")  # the cutoff is in the store, not only in memory
    assert reopened.samples.history(_key("a"))[0][0] >= cutoff
    reopened.close()


def test_silent_series_leave_with_their_chunks():
    store = Store()
    with store.atomic():
        store.samples.append([cpu("a", T0 + i, 1.0) for i in range(10)], "app", now=T0)
        store.samples.append([cpu("b", T0 + SPAN + 1, 1.0)], "app", now=T0 + 10 * SPAN)
        store.samples.seal_all()
        assert store.db.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] == 1
        gone = store.samples.drop_silent(T0 + 5 * SPAN)
    assert gone == [("app", _key("a"))]
    assert store.db.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] == 0
    store.close()


def test_a_failed_seal_rolls_back_and_loses_nothing(tmp_path):
    store = Store(tmp_path / "f.db")
    data = _fill(store, hosts=("a", "b"), points=400)
    with pytest.raises(RuntimeError):
        with store.atomic():
            assert store.samples.seal() > 0
            raise RuntimeError("the disk filled up")
    assert store.db.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] == 0
    with store.atomic():
        store.samples.seal_all()  # the cursor and cached ids of the failed step are forgotten
    for host in ("a", "b"):
        ts, values = store.samples.history(_key(host))
        assert _same(ts, data[host][0]) and _same(values, data[host][1])
    store.close()


def test_an_old_store_migrates_and_its_samples_are_sealed_by_the_prune_job_steps(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="m004_sample_chunks")  # a store of the release before chunks
    db["series"].insert_all([{"id": i + 1, "key": f'cpu{{host="{i}"}}', "name": "cpu",
                              "labels": json.dumps({"host": str(i)}), "source": "app", "first_ts": T0}
                             for i in range(5)])
    rows = [{"ts": T0 + 10.0 * j, "series_id": 1 + i, "value": float(i * 1000 + j)}
            for j in range(1000) for i in range(5)]
    db["samples"].insert_all(rows, batch_size=1000)
    db.close()
    store = Store(path)
    assert store.samples.count() == 5000
    steps = []
    while True:
        with store.atomic():
            step = store.samples.seal(series=2)  # two series per step, as the job goes
        if step < 0:
            break
        steps.append(step)
    assert max(steps) <= 2 * 180 and sum(steps) == 5 * 900  # five complete windows; the sixth stays
    assert store.samples.count() == 5000
    for i in range(5):
        ts, values = store.samples.history(f'cpu{{host="{i}"}}', source="app")
        assert list(ts) == [T0 + 10.0 * j for j in range(1000)]
        assert list(values) == [float(i * 1000 + j) for j in range(1000)]
    store.close()


def test_times_near_1970_or_beyond_any_window_key_stay_readable_and_sealing_ends():
    store = Store()
    stamps = [-7200.0, -10.0, 100.0, 5000.0, 1e15, -1e15]
    with store.atomic():
        store.samples.append([cpu("a", ts, float(i)) for i, ts in enumerate(stamps)], "app")
        store.samples.seal_all()
    assert store.db.execute("SELECT count(*) FROM sample_chunks").fetchone()[0] == 3  # -7200, -10 and 100
    ts, values = store.samples.history(_key("a"))
    assert list(ts) == sorted(stamps) and list(values) == [5.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    assert store.samples.recent([_key("a")], 3, before=5000.0)[_key("a")][0].tolist() == [-7200.0, -10.0, 100.0]
    store.close()


def test_a_few_series_of_a_big_poll_read_the_same_through_the_timestamp_walk_and_chunks(monkeypatch):
    from alertd.store import samples as samples_module
    store = Store()
    hosts = [f"h{i}" for i in range(80)]  # 80 series a timestamp: the head is walked by timestamps
    data = _fill(store, hosts=hosts, points=400)
    with store.atomic():
        store.samples.seal_all()
    keys = [_key("h0"), _key("h41"), _key("h79")]
    for walk in (0, 10 ** 9):  # always walk the head's timestamps, always scan it
        monkeypatch.setattr(samples_module, "STEP_WALK_ROWS", walk)
        for limit, before in ((30, None), (250, None), (100, T0 + 2000.0)):
            got = store.samples.recent(keys, limit, before=before)
            for k in keys:
                ts, values = data[k.split('"')[1]]
                keep = ts < (before if before is not None else np.inf)
                assert _same(got[k][0], ts[keep][-limit:]) and _same(got[k][1], values[keep][-limit:])
    store.close()


def test_a_seal_outside_a_transaction_commits_its_chunks_with_the_heads_deletes(tmp_path):
    store = Store(tmp_path / "a.db")
    data = _fill(store)
    keys = [_key(h) for h in data]
    assert store.samples.seal_all() == 3 * 540  # (no `store.atomic()` around it: tools call it so)
    assert not store.db.conn.in_transaction
    store.close()
    again = Store(tmp_path / "a.db")  # before: the chunks were gone, the head's rows deleted
    assert again.samples.count() == 3 * 600
    for k, (ts, values) in zip(keys, data.values()):
        got = again.samples.recent([k], 600)[k]
        assert _same(got[0], ts) and _same(got[1], values)
    again.close()


def test_the_decoded_timestamps_kept_in_memory_are_bounded_and_reads_stay_exact(monkeypatch):
    from alertd.store import sample_chunks

    monkeypatch.setattr(sample_chunks, "TIMES_KEPT", 8)
    store = Store()
    points = _fill(store, points=20 * 180 + 1)  # 20 windows of 3 series, each with its own timestamps
    with store.atomic():
        store.samples.seal_all()
    chunks = store.samples.chunks
    assert store.db.execute("SELECT count(*) FROM sample_times").fetchone()[0] >= 20 * 3
    assert len(chunks._times) <= 8  # every seal added its arrays; before, all of them stayed
    for host, (ts, values) in points.items():  # reads decode what is no longer kept
        got_ts, got_values = store.samples.history(_key(host), source="app")
        assert _same(got_ts, ts) and _same(got_values, values)
        assert len(chunks._times) <= 8
    store.close()
