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
