"""The SQLite store: migrations, samples (recent history, ranges, retention), kv."""

from __future__ import annotations

import numpy as np

from alertd.model import Sample, make_labels
from alertd.store import Store


def points(name, labels, start, n, step=5.0):
    lab = make_labels(labels)
    return [Sample(name, lab, start + i * step, float(i)) for i in range(n)]


def test_wal_and_migrations_are_applied(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"series", "samples", "incidents", "outbox", "kv"} <= set(store.db.table_names())
    store.close()
    again = Store(tmp_path / "s.db")  # re-opening applies nothing twice
    assert again.db["_sqlite_migrations"].count == len(list(again.db["_sqlite_migrations"].rows))
    again.close()


def test_recent_returns_the_last_points_per_series_before_a_time():
    store = Store()
    a, b = points("x", {"h": "a"}, 1000, 50), points("x", {"h": "b"}, 1100, 10)
    with store.atomic():
        store.samples.append(a + b, "src")
    got = store.samples.recent([a[0].key, b[0].key, "x{h=\"none\"}"], 5, before=1000 + 40 * 5)
    ts, values, n = got[a[0].key]
    assert n == 5 and list(values) == [35, 36, 37, 38, 39] and list(ts) == [1175, 1180, 1185, 1190, 1195]
    ts_b, values_b, n_b = got[b[0].key]
    assert n_b == 5 and list(values_b) == [5, 6, 7, 8, 9]
    assert 'x{h="none"}' not in got


def test_an_append_of_any_size_stores_every_row_and_the_last_of_a_repeated_point_wins():
    # many rows go in multi-row statements of 250 and a remainder: 601 = 2 x 250 + 101
    store = Store()
    series = [points("x", {"h": str(i)}, 1000, 1)[0] for i in range(600)]
    again = Sample("x", make_labels({"h": "7"}), 1000.0, -1.0)  # the same (series, ts) later in the poll
    with store.atomic():
        store.samples.append(series + [again], "src")
    rows = dict(store.db.execute(
        "SELECT s.key, v.value FROM samples v JOIN series s ON s.id = v.series_id").fetchall())
    assert len(rows) == 600 and rows['x{h="7"}'] == -1.0 and rows['x{h="8"}'] == 0.0
    with store.atomic():  # a later poll of the same series
        store.samples.append([s._replace(ts=1005.0, value=2.0) for s in series], "src")
    assert store.db.execute("SELECT count(*), sum(value) FROM samples WHERE ts = 1005").fetchone() == (600, 1200.0)


def test_series_made_in_a_rolled_back_transaction_do_not_lend_their_ids(tmp_path):
    store = Store(tmp_path / "s.db")
    a, b = points("x", {"h": "a"}, 1000, 1)[0], points("x", {"h": "b"}, 1000, 1)[0]
    try:
        with store.atomic():
            store.samples.append([a], "src")  # a's series row is made, then rolled back
            raise RuntimeError("the tick failed")
    except RuntimeError:
        pass
    with store.atomic():
        store.samples.append([b], "src")
        store.samples.append([a._replace(ts=1005.0, value=7.0)], "src")
    rows = dict(store.db.execute(
        "SELECT s.key, v.value FROM samples v JOIN series s ON s.id = v.series_id").fetchall())
    assert rows == {b.key: 0.0, a.key: 7.0}
    assert store.db.execute("SELECT count(DISTINCT id) FROM series").fetchone()[0] == 2
    store.close()


def test_histories_reads_many_series_in_one_range():
    store = Store()
    a, b = points("x", {"h": "a"}, 0, 20), points("y", {}, 0, 20)
    with store.atomic():
        store.samples.append(a + b, "src")
    got = store.samples.histories([a[0].key, b[0].key, "missing"], start=10, end=50)
    assert list(got[a[0].key][0]) == [10, 15, 20, 25, 30, 35, 40, 45]
    assert len(got["missing"][0]) == 0
    ts, values = store.samples.history(b[0].key)
    assert len(ts) == 20 and np.all(np.diff(ts) > 0)


def test_prune_drops_only_old_samples():
    store = Store()
    with store.atomic():
        store.samples.append(points("x", {}, 0, 100), "src")
    assert store.samples.prune(250) == 50
    ts, _ = store.samples.history("x")
    assert ts.min() == 250 and len(ts) == 50


def test_kv_round_trip(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.get_kv("k", "default") == "default"
    store.set_kv("k", {"a": [1, 2]})
    store.close()
    assert Store(tmp_path / "s.db").get_kv("k") == {"a": [1, 2]}


def test_recent_walks_timestamps_for_a_few_series_and_answers_as_the_scan():
    """A few series of many that share each poll's timestamp are read by walking the
    timestamps (index seeks); the answer must be the scan's: gaps, NaN values, series that
    start late, series of another source on timestamps of their own."""
    import numpy as np

    from alertd.store import samples as samples_module
    rng = np.random.default_rng(3)
    store = Store()
    polls = []
    for step in range(120):
        ts = 1000.0 + 10 * step
        poll = [Sample("m", make_labels({"h": str(i)}), ts, float(rng.normal())) for i in range(200)
                if not (i == 5 and step % 3 == 0) and not (i == 7 and step < 100)]
        poll[0] = poll[0]._replace(value=float("nan")) if step == 50 else poll[0]
        poll.append(Sample("other", make_labels({}), ts + 3.5, float(step)))  # another source's own times
        polls.append(poll)
    with store.atomic():
        for poll in polls:
            store.samples.append(poll, "src")
    keys = ['m{h="0"}', 'm{h="5"}', 'm{h="7"}', 'm{h="199"}', 'other', 'm{h="none"}']
    assert 90 < store.samples._rows_per_step(float("inf")) < 110  # a poll: about 200 rows at 2 timestamps
    threshold = samples_module.STEP_WALK_ROWS
    for limit, before in ((5, None), (30, 1500.0), (90, 2000.5), (500, None)):
        try:
            samples_module.STEP_WALK_ROWS = 0  # always walk
            walked = store.samples.recent(keys, limit, before=before)
            samples_module.STEP_WALK_ROWS = 10**9  # always scan
            scanned = store.samples.recent(keys, limit, before=before)
        finally:
            samples_module.STEP_WALK_ROWS = threshold
        assert walked.keys() == scanned.keys() and 'm{h="none"}' not in walked
        for key in walked:
            (ts_w, v_w, n_w), (ts_s, v_s, n_s) = walked[key], scanned[key]
            assert n_w == n_s and list(ts_w) == list(ts_s), (key, limit, before)
            assert np.array_equal(v_w, v_s, equal_nan=True)
