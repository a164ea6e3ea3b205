"""The sql source on a real SQLite file: stdlib read-only, and through SQLAlchemy."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from source_helpers import make_source

from alertd.base import SourceError
from alertd.config.load import load_config
from alertd.config.schema import ConfigError

ORDERS_LAST_MINUTE = """
    SELECT region, COUNT(*) AS orders_per_minute, SUM(amount) AS revenue_per_minute
    FROM orders WHERE created_at >= :since AND created_at < :now GROUP BY region ORDER BY region
"""


@pytest.fixture
def shop_db(tmp_path, clock):
    path = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, amount REAL, created_at REAL)")
    now = clock.now()
    rows = [("eu", 10.0, now - 5), ("eu", 20.0, now - 30), ("us", 5.5, now - 59), ("us", 99.0, now - 600),
            ("apac", 1.0, now - 3600)]
    conn.executemany("INSERT INTO orders (region, amount, created_at) VALUES (?, ?, ?)", rows)
    conn.execute("CREATE TABLE hourly (hour TEXT, provider TEXT, ratio TEXT)")
    conn.executemany("INSERT INTO hourly VALUES (?, ?, ?)", [
        ("2024-06-03T08:00:00Z", "stripe", "0.99"), ("2024-06-03T09:00:00Z", "stripe", "n/a")])
    conn.commit()
    conn.close()
    return path


def collect(source):
    return asyncio.run(source.collect())


def test_label_columns_and_value_columns_with_the_clock_window(shop_db, registry, clock):
    source = make_source(registry, "sql", {"path": str(shop_db), "query": ORDERS_LAST_MINUTE,
                                           "values": ["orders_per_minute", "revenue_per_minute"]},
                         clock, interval=60)
    samples = {s.key: s.value for s in collect(source)}
    assert samples == {'orders_per_minute{region="eu"}': 2.0, 'revenue_per_minute{region="eu"}': 30.0,
                       'orders_per_minute{region="us"}': 1.0, 'revenue_per_minute{region="us"}': 5.5}
    clock.advance(600)  # the window moves with the daemon's clock: nothing in the last minute
    assert collect(source) == []


def test_default_value_is_the_last_column_and_timestamps_come_from_a_column(shop_db, registry, clock):
    source = make_source(registry, "sql", {"path": str(shop_db), "timestamp": "hour", "name": "psp_ratio",
                                           "query": "SELECT hour, provider, ratio FROM hourly ORDER BY hour"},
                         clock)
    first, second = collect(source)
    assert (first.name, dict(first.labels), first.ts, first.value) == (
        "psp_ratio", {"provider": "stripe"}, 1717401600.0, 0.99)
    assert second.value == "n/a"  # not a number: left for the engine to drop and count


def test_the_database_is_opened_read_only(shop_db, registry, clock):
    source = make_source(registry, "sql", {"path": str(shop_db),
                                           "query": "DELETE FROM orders RETURNING id"}, clock)
    with pytest.raises(SourceError, match="readonly|read-only|query_only") as info:
        collect(source)
    assert info.value.reason == "query"
    assert sqlite3.connect(shop_db).execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 5


@pytest.mark.parametrize("params, reason, words", [
    ({"query": "SELECT region FROM nowhere"}, "query", ["failed", "no such table: nowhere"]),
    ({"query": "SELECT region, amount FROM orders", "values": ["total"]}, "query",
     ["no column 'total'", "region, amount"]),
    ({"query": "SELECT region, amount FROM orders", "max_rows": 3}, "too_large", ["more than max_rows (3)"]),
])
def test_query_mistakes_are_one_sentence(shop_db, registry, clock, params, reason, words):
    source = make_source(registry, "sql", {"path": str(shop_db), **params}, clock)
    with pytest.raises(SourceError) as info:
        collect(source)
    assert info.value.reason == reason and all(w in str(info.value) for w in words), str(info.value)


def test_a_missing_file_is_reported_not_created(tmp_path, registry, clock):
    source = make_source(registry, "sql", {"path": str(tmp_path / "nope.sqlite"), "query": "SELECT 1"}, clock)
    with pytest.raises(SourceError, match="does not exist"):
        collect(source)
    assert not (tmp_path / "nope.sqlite").exists()


def test_a_slow_query_is_interrupted_at_the_timeout(shop_db, registry, clock):
    slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
            "SELECT COUNT(*) AS c FROM n")
    source = make_source(registry, "sql", {"path": str(shop_db), "query": slow}, clock, timeout=0.3)
    with pytest.raises(SourceError, match="did not finish within 0.27s") as info:
        collect(source)
    assert info.value.reason == "timeout"


def test_sqlalchemy_url_reads_the_same_database(shop_db, registry, clock):
    # SQLAlchemy is the optional `sql` extra; the test extra installs it
    source = make_source(registry, "sql", {"url": f"sqlite:///{shop_db}", "query": ORDERS_LAST_MINUTE,
                                           "values": ["orders_per_minute"], "labels": ["region"]},
                         clock, interval=60)
    samples = {s.key: s.value for s in collect(source)}
    assert samples == {'orders_per_minute{region="eu"}': 2.0, 'orders_per_minute{region="us"}': 1.0}
    writer = make_source(registry, "sql", {"url": f"sqlite:///{shop_db}", "query": "DELETE FROM orders"}, clock)
    with pytest.raises(SourceError):
        collect(writer)
    assert sqlite3.connect(shop_db).execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 5
    asyncio.run(source.close())


def test_config_needs_exactly_one_of_path_and_url(write_config, registry):
    path = write_config("""
        sources:
          both: {type: sql, every: 1m, path: a.sqlite, url: "sqlite:///a.sqlite", query: SELECT 1}
          neither: {type: sql, every: 1m, query: SELECT 1}
          badurl: {type: sql, every: 1m, url: "not a url", query: SELECT 1}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    text = str(info.value)
    assert 'alertd.yaml:2: sources.both: give either "path" (a SQLite file) or "url"' in text
    assert "alertd.yaml:3: sources.neither: give either" in text
    assert "alertd.yaml:4: sources.badurl: url is not a SQLAlchemy URL" in text
