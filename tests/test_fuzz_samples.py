"""Hostile sample values through the engine's ingest: never an exception, every unusable
sample counted in `alertd_samples_skipped_total{source, reason}`, only finite floats stored,
and the notices of whatever fired render.

Values: NaN, +-Inf, 1e308, -0.0, 5e-324, strings, None, booleans, ints beyond a float,
numpy scalars, Decimals; timestamps likewise, plus times datetime cannot show. Items that
are not Samples at all are mixed in.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
from fuzzing import fuzz_settings, tally
from hypothesis import given
from hypothesis import strategies as st

from alertd.clock import FakeClock
from alertd.config.load import load_config
from alertd.engine.tick import Engine
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Sample, make_labels
from alertd.render.renderer import Renderer
from alertd.store import Store

CONFIG = """\
sources:
  app: {type: test_list, every: 5s}
rules:
  - {name: low, source: app, series: m, detector: {type: threshold, below: 0}}
  - {name: odd, source: app, series: 'm{host=~".+"}', detector: {type: zscore, window: 5, min_history: 3}}
receivers:
  console: [{type: console}]
routes: {receiver: console, group_wait: 0s, group_interval: 1s}
"""
REASONS = ("not_a_sample", "not_a_number", "too_large", "not_finite", "bad_timestamp", "future_timestamp")
NOW = 1_750_000_000.0

odd_numbers = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, -0.0, 0.0, 5e-324, 10 ** 400,
                     -(10 ** 400), 2 ** 63, 2 ** 64 + 1, 10 ** 308 * 10, True, False, None, "", "1.5",
                     "NaN", "abc", b"1", [], {}, Decimal("1.5"), np.float64("nan"), np.float64(2.5),
                     np.int64(3), np.bool_(True), complex(1, 2)]),
    st.floats(), st.integers(), st.text(max_size=6))
values = st.one_of(st.floats(-1e6, 1e6), odd_numbers)
stamps = st.one_of(st.floats(NOW - 3600, NOW + 3600), st.just(NOW), odd_numbers,
                   st.sampled_from([-1e12, 1e12, 253402300800.0, 1e15, -62135596801.0, 0, -1]))
samples = st.builds(Sample, st.just("m"),
                    st.dictionaries(st.sampled_from(["host", "x"]), st.sampled_from(["a", "b", "{{ 7*7 }}"]),
                                    max_size=2).map(make_labels),
                    stamps, values)
items = st.lists(st.one_of(samples, samples, samples, st.none(), st.integers(), st.text(max_size=3),
                           st.tuples(st.just("m"), st.floats())), max_size=25)


def usable(item, now: float = NOW) -> bool:
    """The spec: a Sample whose value and timestamp are non-bool int/float, finite as floats,
    the timestamp within datetime's years 1-9999 and no more than 5 minutes after `now`."""
    if not isinstance(item, Sample):
        return False
    for x in (item.value, item.ts):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return False
        try:
            if not math.isfinite(float(x)):
                return False
        except OverflowError:
            return False
    return -62135596800 <= item.ts <= 253402300799 and item.ts <= now + 300


@pytest.fixture(scope="module")
def config(tmp_path_factory, registry):
    path = tmp_path_factory.mktemp("fuzz") / "alertd.yaml"
    path.write_text(CONFIG)
    return load_config(path, registry, environ={})


@fuzz_settings(200)
@given(polls=st.lists(items, min_size=1, max_size=4))
def test_any_values_are_stored_or_counted_never_raised(polls, config, registry):
    store, metrics, clock = Store(), Metrics(), FakeClock(NOW)
    try:
        engine = Engine(config, registry, store, clock, metrics, get_logger())
        expected = 0
        for poll in polls:
            result = engine.ingest("app", poll)
            assert result.stored == sum(usable(x, clock.now()) for x in poll)
            assert result.skipped == len(poll) - result.stored
            expected += result.skipped
            clock.advance(5)
        skipped = sum(metrics.samples_skipped.labels("app", r)._value.get() for r in REASONS)
        assert skipped == expected
        rows = store.db.execute("SELECT ts, value, typeof(value) FROM samples").fetchall()
        assert all(t == "real" and math.isfinite(v) and math.isfinite(ts) for ts, v, t in rows)
        renderer = Renderer()
        for row in store.outbox.due(NOW + 10 ** 6):
            assert renderer.render("title", row.notification)
            assert renderer.render("text", row.notification)
            tally("samples notices-rendered")
        tally("samples engine-polls", len(polls))
        tally("samples values-ingested", sum(len(p) for p in polls))
    finally:
        store.close()


def test_huge_ints_and_far_timestamps_are_counted_not_raised(config, registry, clock):
    """Was: OverflowError out of ingest (an int beyond a float, or beyond SQLite's integers),
    and timestamps such as 1e15 stored, then failing every notice that showed them."""
    store, metrics = Store(), Metrics()
    engine = Engine(config, registry, store, clock, metrics, get_logger())
    t = clock.now()
    result = engine.ingest("app", [Sample("m", (), t, 10 ** 400), Sample("m", (), t, 2 ** 63),
                                   Sample("m", (), 1e15, 1.0), Sample("m", (), t + 1, -0.0)])
    assert (result.stored, result.skipped) == (2, 2)
    assert metrics.samples_skipped.labels("app", "too_large")._value.get() == 1
    assert metrics.samples_skipped.labels("app", "bad_timestamp")._value.get() == 1
    assert store.db.execute("SELECT value FROM samples ORDER BY ts").fetchall() == [(2.0 ** 63,), (-0.0,)]
    store.close()
