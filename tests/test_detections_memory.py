"""The recent detections forget a dropped series' expected band with its points.

`drop_silent` (engine/forget.py) hands the keys of series silent past retention to
`Detections.forget_keys`; it dropped their anomalous points but kept their bands, so a
churning source whose series had incidents (pods that crash, then get new names) kept one
band per dead series until the rule's `max_series` (1000 series of up to 256 points each).
"""

from __future__ import annotations

from alertd.engine.detections import Detections


def test_forget_keys_drops_the_bands_of_dropped_series():
    d = Detections(per_series=8, max_series=1000)
    for gen in range(30):  # each generation of pods has an incident, then goes silent
        keys = [f'requests{{pod="web-{gen}-{i}"}}' for i in range(5)]
        for t in range(4):
            ts = gen * 100.0 + t
            d.add("pods", keys, [ts] * 5, [500.0] * 5)
            for key in keys:
                d.band("pods", key, ts, 90.0, 110.0)
        d.forget_keys("pods", keys)  # the prune dropped them
    assert d.of("pods", 'requests{pod="web-0-0"}') == []
    assert d.band_of("pods", 'requests{pod="web-0-0"}') == []
    assert len(d._by_rule["pods"]) == 0 and len(d._bands["pods"]) == 0  # before: 150 bands kept


def test_forget_keys_keeps_the_bands_of_other_series():
    d = Detections()
    d.band("q", 'queue_depth{queue="q1"}', 1.0, 9.0, 11.0)
    d.band("q", 'queue_depth{queue="q2"}', 1.0, 8.0, 12.0)
    d.forget_keys("q", ['queue_depth{queue="q1"}'])
    assert d.band_of("q", 'queue_depth{queue="q1"}') == []
    assert d.band_of("q", 'queue_depth{queue="q2"}') == [(1.0, 8.0, 12.0)]


def test_a_series_keeps_its_last_points_oldest_first_and_its_least_recent_series_go():
    d = Detections(per_series=4, max_series=2)
    for t in range(10):  # 10 points into rings of 4: the last 4, oldest first
        d.add("r", ["a"], [float(t)], [t * 10.0])
        d.band("r", "a", float(t), t - 1.0, t + 1.0)
    assert d.of("r", "a") == [(6.0, 60.0), (7.0, 70.0), (8.0, 80.0), (9.0, 90.0)]
    assert d.band_of("r", "a") == [(float(t), t - 1.0, t + 1.0) for t in range(6, 10)]
    d.add("r", ["b"], [1.0], [float("nan")])
    assert d.of("r", "b")[0][0] == 1.0 and d.of("r", "b")[0][1] != d.of("r", "b")[0][1]  # NaN kept
    d.add("r", ["c"], [2.0], [3.0])  # a third series: the least recently used ("a") goes
    assert d.of("r", "a") == [] and d.of("r", "c") == [(2.0, 3.0)]
    assert d.held() == 1 + 1 + 4  # b, c, and a's band (bands count their own series)


def test_a_full_series_holds_its_points_in_a_few_kilobytes():
    import tracemalloc

    d = Detections()  # 256 points a series
    tracemalloc.start()
    try:
        for t in range(300):
            d.add("r", [f"s{i}" for i in range(100)], [float(t)] * 100, [1.5 + t] * 100)
            for i in range(100):
                d.band("r", f"s{i}", float(t), 1.0 + t, 2.0 + t)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert d.held() == 2 * 100 * 256
    # 100 series x 256 points x (2 + 3) floats = 1,000 KiB of numbers; deques of tuples of
    # floats took about 5,500 KiB (measured)
    assert used < 1.3 * 100 * 256 * 5 * 8
