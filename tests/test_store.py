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
