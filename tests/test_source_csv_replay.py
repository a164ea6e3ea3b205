"""The csv_replay source: speed, shifted or original timestamps, loops, restarts, bad rows."""

from __future__ import annotations

import asyncio

import pytest
from source_helpers import make_source

from alertd.base import SourceError
from alertd.store import Store

NAB = """timestamp,value
2014-04-01 00:00:00,10
2014-04-01 00:05:00,11
2014-04-01 00:10:00,12
2014-04-01 00:15:00,13
"""
T0 = 1396310400.0  # 2014-04-01 00:00:00 UTC


def poll(source):
    samples = asyncio.run(source.collect())
    source.commit()
    source.committed()
    return [(s.ts, s.value) for s in samples]


def replay(registry, clock, tmp_path, text=NAB, store=None, **params):
    path = tmp_path / "data.csv"
    path.write_text(text)
    source = make_source(registry, "csv_replay", {"path": str(path), **params}, clock, name="temp", store=store)
    asyncio.run(source.start())
    return source


def test_rows_come_at_speed_with_shifted_timestamps(registry, clock, tmp_path):
    source = replay(registry, clock, tmp_path, speed=60)  # five data minutes per five clock seconds
    start = clock.now()
    assert poll(source) == [(start, 10.0)]
    clock.advance(4)
    assert poll(source) == []
    clock.advance(6)
    assert poll(source) == [(start + 300, 11.0), (start + 600, 12.0)]
    clock.advance(100)
    assert poll(source) == [(start + 900, 13.0)]
    assert poll(source) == []  # the end: no data


def test_original_timestamps_and_label_columns(registry, clock, tmp_path):
    text = "ts,value,region\n1700000000,1,eu\n1700000000,2,us\n1700000060000,3,eu\n"
    source = replay(registry, clock, tmp_path, text, speed=1, timestamps="original", name="orders")
    first = asyncio.run(source.collect())
    assert [(s.key, s.ts, s.value) for s in first] == [('orders{region="eu"}', 1_700_000_000.0, 1.0),
                                                       ('orders{region="us"}', 1_700_000_000.0, 2.0)]
    clock.advance(60)
    assert [(s.key, s.ts) for s in asyncio.run(source.collect())] == [('orders{region="eu"}', 1_700_000_060.0)]


def test_loop_keeps_time_increasing(registry, clock, tmp_path):
    source = replay(registry, clock, tmp_path, speed=300, loop=True)  # one row per clock second
    start = clock.now()
    got = []
    for _ in range(9):
        got += poll(source)
        clock.advance(1)
    assert [v for _, v in got] == [10, 11, 12, 13, 10, 11, 12, 13, 10]
    stamps = [t for t, _ in got]
    assert stamps == [start + 300 * k for k in range(9)]  # one span = 4 rows of 5 minutes


def test_a_restart_goes_on_where_the_replay_was(registry, clock, tmp_path):
    store = Store(tmp_path / "alertd.db")
    source = replay(registry, clock, tmp_path, store=store, speed=60)
    start = clock.now()
    assert [v for _, v in poll(source)] == [10]  # the replay starts at its first poll
    clock.advance(5)
    assert [v for _, v in poll(source)] == [11]
    clock.advance(5)
    again = replay(registry, clock, tmp_path, store=store, speed=60)
    assert poll(again) == [(start + 600, 12.0)]  # neither the first rows again nor a new start
    store.close()


@pytest.mark.parametrize("text, words", [
    ("1,2,3\n", ["line 1", "3 columns but no header"]),
    ("timestamp,value\n2014-04-01 00:00:00,1\nyesterday,2\n", ["line 3", "'yesterday' is not a timestamp"]),
    ("timestamp,value,region\n1700000000,1\n", ["line 2", "has 2 columns, the header 3"]),
    ("timestamp,value\n", ["no data rows"]),
])
def test_bad_files_are_one_sentence(registry, clock, tmp_path, text, words):
    source = replay(registry, clock, tmp_path, text, speed=1e6)
    with pytest.raises(SourceError) as info:
        asyncio.run(source.collect())
    assert all(w in str(info.value) for w in words), str(info.value)


def test_non_numeric_values_are_left_for_the_engine(registry, clock, tmp_path):
    source = replay(registry, clock, tmp_path, "timestamp,value\n1700000000,n/a\n", timestamps="original")
    assert [s.value for s in asyncio.run(source.collect())] == ["n/a"]


def test_the_data_interval_is_the_files_spacing_not_the_poll_times_speed(registry, tmp_path):
    # flap detection fills gaps between evaluations with "unchanged" ones, one per data
    # interval: a replay of 5-minute rows polled every 1 s at speed 60 (60 data seconds a
    # poll) must say 5 minutes, or every gap would look like four missed evaluations
    cls = registry.get("source", "csv_replay")
    path = tmp_path / "data.csv"
    path.write_text(NAB)
    assert cls.data_interval(cls.Params(path=str(path), speed=60), 1.0) == 300.0
    labelled = tmp_path / "labelled.csv"  # two series interleaved, a minute apart each
    labelled.write_text("ts,value,region\n" + "".join(f"{1700000000 + 60 * i},{i},{r}\n"
                                                      for i in range(5) for r in ("eu", "us")))
    assert cls.data_interval(cls.Params(path=str(labelled), speed=10), 1.0) == 60.0
    # unreadable now (it may appear before the first poll): what a poll covers
    assert cls.data_interval(cls.Params(path=str(tmp_path / "missing.csv"), speed=60), 2.0) == 120.0
