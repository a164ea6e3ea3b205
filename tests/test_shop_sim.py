"""The built-in `shop_sim` source: determinism, sim clock, back-fill, seasonality, incidents."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from alertd.base import PluginContext
from alertd.clock import FakeClock
from alertd.config.schema import ConfigError, parse_params
from alertd.default_plugins.sources.shop_sim import ShopSim

START = "2025-06-03T00:00:00Z"  # a Tuesday, midnight UTC
START_TS = datetime(2025, 6, 3, tzinfo=timezone.utc).timestamp()
DAY = 86400.0


def make_sim(clock=None, store=None, **params) -> ShopSim:
    clock = clock or FakeClock(1_750_000_000.0)
    return ShopSim(parse_params(ShopSim.Params, params), PluginContext("shop", clock.now, store=store))


def by_key(samples) -> dict[str, float]:
    return {s.key: s.value for s in samples}


def run(coro):
    return asyncio.run(coro)


def test_registered_as_a_builtin(registry):
    assert registry.get("source", "shop_sim") is ShopSim


def test_collect_gives_one_sample_per_series_at_the_current_slot():
    clock = FakeClock(1_750_000_000.0)
    sim = make_sim(clock, start=START)
    samples = run(sim.collect())
    keys = [s.key for s in samples]
    assert len(keys) == len(set(keys)) == 3 + 3 + 1 + 1 + 1 + 1 + 4
    assert 'orders_per_minute{region="eu"}' in keys
    assert 'payment_success_ratio{provider="adyen"}' in keys
    assert "checkout_latency_p95_ms" in keys and "http_5xx_rate" in keys
    assert "order_queue_backlog" in keys and "memory_used_ratio" in keys
    assert 'stock_level{sku="sku-hoodie"}' in keys
    assert {s.ts for s in samples} == {START_TS}


def test_sim_clock_runs_speed_times_faster_and_snaps_to_step():
    clock = FakeClock(1_750_000_000.0)
    sim = make_sim(clock, start=START, speed=60, step="60s")
    clock.advance(2.5)  # 150 sim seconds: slot 2
    assert sim.sim_now() == pytest.approx(START_TS + 150)
    assert {s.ts for s in run(sim.collect())} == {START_TS + 120}


def test_polls_once_a_step_at_the_slots_edge_give_one_new_slot_each_despite_jitter():
    """The demo polls every 2 s at 60x with 2-minute steps: a poll per slot. When the polls
    fall at the slots' edges, a few milliseconds of lateness used to give one slot twice (the
    engine skipped it as repeated and warned on every rule) and skip the next."""
    clock = FakeClock(START_TS)
    sim = make_sim(clock, start=START, speed=60, step="2m")
    jitter = [0.004, -0.003, 0.0, 0.006, -0.001, 0.002, -0.005, 0.003] * 10  # seconds, around the edge
    stamps = []
    for k, late in enumerate(jitter, start=1):
        clock.set(START_TS + 2.0 * k + late)
        stamps.append({s.ts for s in run(sim.collect())})
    assert all(len(ts) == 1 for ts in stamps)
    stamps = [ts.pop() for ts in stamps]
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [120.0] * (len(stamps) - 1)
    assert abs(stamps[-1] - (START_TS + 60 * 2.0 * len(jitter))) <= 60  # never more than half a step ahead


def test_polls_faster_than_the_step_never_go_back_or_run_ahead():
    clock = FakeClock(START_TS)
    sim = make_sim(clock, start=START, speed=1, step="60s")
    last = None
    for k in range(1, 200):
        clock.set(START_TS + 17.0 * k)  # 3.5 polls a step
        (ts,) = {s.ts for s in run(sim.collect())}
        assert last is None or ts >= last
        assert ts <= clock.now() + 30  # at most half a step ahead of the sim clock
        last = ts


def test_same_seed_same_samples_and_different_seed_different():
    a, b, c = make_sim(start=START), make_sim(start=START), make_sim(start=START, seed=7)
    assert a.history(60) == b.history(60)
    assert run(a.collect()) == run(b.collect())
    assert [s.value for s in a.history(60)] != [s.value for s in c.history(60)]


def test_value_depends_only_on_the_slot():
    sim = make_sim(start=START)
    t = START_TS + 5 * 3600
    assert sim.samples_at(t) == sim.samples_at(t + 59.9)
    assert sim.samples_at(t) != sim.samples_at(t + 60)


def test_collect_backfill_and_restart_agree():
    clock = FakeClock(1_750_000_000.0)
    sim = make_sim(clock, start=START, speed=60)
    clock.advance(180)  # 3 sim hours in
    filled = run(sim.backfill(clock.now() - 60, clock.now()))
    assert filled, "back-fill returned nothing"
    target_ts = START_TS + 2 * 3600 + 17 * 60  # a slot inside the window
    from_backfill = {s.key: s.value for s in filled if s.ts == target_ts}
    assert len(from_backfill) == len(sim.series)
    # the same instance polled when the sim was at that slot (clock moved back)
    clock.set(1_750_000_000.0 + (target_ts - START_TS + 30) / 60)
    polled = run(sim.collect())
    assert {s.ts for s in polled} == {target_ts} and by_key(polled) == from_backfill
    # a "restarted" instance built at another clock time, polled later at that slot
    other_clock = FakeClock(1_800_000_000.0)
    restarted = make_sim(other_clock, start=START, speed=60)
    other_clock.advance((target_ts - START_TS) / 60)
    assert by_key(run(restarted.collect())) == from_backfill


def test_backfill_window_maps_the_clock_to_sim_time_and_stops_before_the_current_slot():
    clock = FakeClock(1_750_000_000.0)
    sim = make_sim(clock, start=START, speed=60, backfill="30m")
    clock.advance(600)  # 10 sim hours
    now_slot = sim.slot_ts(sim.sim_now())
    # 2 clock minutes at speed 60 are 2 sim hours: longer than backfill, so honoured
    samples = run(sim.backfill(clock.now() - 120, clock.now()))
    times = sorted({s.ts for s in samples})
    assert times[-1] == now_slot - 60 and times[0] == now_slot - 7200
    assert len(times) == 120 and all(b - a == 60 for a, b in zip(times, times[1:]))
    # a tiny window is widened to the `backfill` param (30 sim minutes)
    assert len({s.ts for s in run(sim.backfill(clock.now() - 1, clock.now()))}) == 30
    # the next poll is the first point after the back-fill
    assert {s.ts for s in run(sim.collect())} == {now_slot}


def test_backfill_in_chunks_reaches_back_at_most_the_cap_from_now():
    """The daemon back-fills a week of its clock in chunks; at 60x that is 420 shop days, of
    which only the newest `_MAX_BACKFILL_STEPS` slots are generated (once, without overlap)."""
    from alertd.default_plugins.sources.shop_sim.source import _MAX_BACKFILL_STEPS
    clock = FakeClock(1_750_000_000.0)
    sim = make_sim(clock, start=START, speed=60, step="2m")
    now = clock.now()
    chunk = 20_000.0  # 10,000 points of a 2 s poll
    times = []
    start = now - 7 * 86400
    while start < now:
        times += [s.ts for s in run(sim.backfill(start, min(start + chunk, now))) if s.key == sim.series[0][2]]
        start += chunk
    assert len(times) == len(set(times)) == _MAX_BACKFILL_STEPS
    now_slot = sim.slot_ts(sim.sim_now())
    assert max(times) == now_slot - 120 and min(times) == now_slot - _MAX_BACKFILL_STEPS * 120


def test_restart_with_a_store_continues_sim_time():
    class KV(dict):
        def get_kv(self, key, default=None):
            return self.get(key, default)

        def set_kv(self, key, value):
            self[key] = value

    store, clock = KV(), FakeClock(1_750_000_000.0)
    first = make_sim(clock, store=store, speed=60)
    clock.advance(100)
    before = first.sim_now()
    second = make_sim(clock, store=store, speed=60)  # the daemon restarted
    assert second.sim_now() == before
    third = make_sim(clock, store=store, speed=30)  # changed speed: a fresh sim clock
    assert third.sim_now() == clock.now()


def ratios_at(sim, t) -> dict[str, float]:
    return {s.labels[0][1]: s.value for s in sim.samples_at(t) if s.name == "payment_success_ratio"}


def values_of(sim, name, start, end) -> list[float]:
    return [s.value for s in sim.samples_between(start, end) if s.name == name]


def test_default_schedule_starts_with_a_payment_outage():
    sim = make_sim(start=START)
    first = min(sim.params.specs(), key=lambda spec: spec.at)
    assert first.kind == "payment_outage" and 0 < first.at <= 30 * 60
    kinds = [spec.kind for spec in sorted(sim.params.specs(), key=lambda spec: spec.at)]
    assert kinds[:4] == ["payment_outage", "traffic_spike", "latency_degradation", "stock_out"]
    assert sim.active_incidents(START_TS + first.at - 60) == []
    during = START_TS + first.at + 5 * 60
    (active,) = sim.active_incidents(during)
    assert active.kind == "payment_outage" and active.start == START_TS + first.at
    target = active.targets[0]
    ratios = ratios_at(sim, during)
    assert ratios[target] < 0.6
    assert all(0.95 < v <= 1 for p, v in ratios.items() if p != target)
    # normal before and after; the schedule repeats every cycle
    assert min(ratios_at(sim, during - 15 * 60).values()) > 0.95
    assert [i.kind for i in sim.active_incidents(during + sim.cycle)] == ["payment_outage"]


def test_payment_ratio_normal_range_over_a_day():
    sim = make_sim(start=START, incidents=[])
    values = values_of(sim, "payment_success_ratio", START_TS, START_TS + DAY)
    assert min(values) > 0.95 and max(values) < 1.0
    latency = values_of(sim, "checkout_latency_p95_ms", START_TS, START_TS + DAY)
    assert 250 < min(latency) and max(latency) < 500


def test_orders_are_seasonal():
    sim = make_sim(start=START, incidents=[])

    def mean_orders(region, t0, minutes=30):
        vals = [s.value for s in sim.samples_between(t0, t0 + minutes * 60)
                if s.key == f'orders_per_minute{{region="{region}"}}']
        return sum(vals) / len(vals)

    # eu is UTC+1: 02:00 UTC is 03:00 local, 19:00 UTC is 20:00 local
    night, evening = mean_orders("eu", START_TS + 2 * 3600), mean_orders("eu", START_TS + 19 * 3600)
    assert night < 0.3 * evening
    # the demo's Saturday evening is busier than Tuesday evening (the week scenario's dips)
    saturday = mean_orders("eu", START_TS + 4 * DAY + 19 * 3600)
    assert saturday > 1.1 * evening


def test_traffic_spike_and_collapse_scale_orders():
    spiky = make_sim(start=START, incidents=[{"kind": "traffic_spike", "at": "1h", "duration": "30m",
                                              "target": "us"},
                                             {"kind": "traffic_collapse", "at": "3h", "duration": "30m",
                                              "target": "*"}])
    calm = make_sim(start=START, incidents=[])
    key = 'orders_per_minute{region="us"}'

    def total(sim, t0):
        return sum(s.value for s in sim.samples_between(t0, t0 + 1800) if s.key == key)

    assert total(spiky, START_TS + 3600) == pytest.approx(3 * total(calm, START_TS + 3600), rel=0.15)
    assert total(spiky, START_TS + 3 * 3600) < 0.2 * total(calm, START_TS + 3 * 3600)


def test_latency_degradation_multiplies_latency():
    sim = make_sim(start=START, incidents=[{"kind": "latency_degradation", "at": "1h",
                                            "duration": "10m"}])
    normal = by_key(sim.samples_at(START_TS + 50 * 60))["checkout_latency_p95_ms"]
    slow = by_key(sim.samples_at(START_TS + 65 * 60))
    assert slow["checkout_latency_p95_ms"] > 2.5 * normal
    assert slow["http_5xx_rate"] > 5 * by_key(sim.samples_at(START_TS + 50 * 60))["http_5xx_rate"]


def test_stock_out_drives_stock_to_zero():
    """A short delivery: the stock runs down with sales and is empty exactly at `at`."""
    sim = make_sim(start=START, incidents=[{"kind": "stock_out", "at": "2h", "duration": "20m",
                                            "target": "sku-mug"}])
    during = by_key(sim.samples_at(START_TS + 2 * 3600 + 300))
    assert during['stock_level{sku="sku-mug"}'] == 0
    assert all(v > 0 for k, v in during.items() if k.startswith("stock_level") and "mug" not in k)
    stock = values_of(sim, "stock_level", START_TS, START_TS + 2 * 3600 - 600)
    assert min(stock) > 0
    mug = [s.value for s in sim.samples_between(START_TS, START_TS + 2 * 3600 + 1800)
           if s.key == 'stock_level{sku="sku-mug"}']
    assert all(b <= a for a, b in zip(mug[:115], mug[1:116]))  # it only sells until the stock-out
    assert mug[110] > 0 and mug[120] == 0 and mug[-1] > 1000  # empty at 2h, refilled at 2h20


@pytest.mark.parametrize("params, message", [
    ({"incidents": [{"kind": "payment_meltdown", "at": "5m"}]}, "payment_meltdown"),
    ({"incidents": [{"kind": "payment_outage", "at": "5m", "target": "klarna"}]}, "klarna"),
    ({"incidents": [{"kind": "latency_degradation", "at": "5m", "target": "eu"}]}, "remove its target"),
    ({"incidents": [{"kind": "traffic_drop", "at": "5m", "depth": 1.5}]}, "between 0.05 and 0.95"),
    ({"incidents": [{"kind": "traffic_drop", "at": "5m", "factor": 2}]}, "its size is depth"),
    ({"incidents": [{"kind": "memory_leak", "at": "5m", "rate": 0.1}]}, "takes no rate"),
    ({"scenario": "month"}, "scenario"),
    ({"scenario": "week", "regions": ["eu", "us"]}, 'scenario "week"'),
    ({"cycle": "-1h"}, "cycle"),
    ({"incidents": [{"kind": "stock_out"}]}, '"at"'),
    ({"speed": 0}, "speed"),
    ({"start": "yesterday"}, "ISO"),
    ({"step": "often"}, "duration"),
    ({"regions": []}, "regions"),
])
def test_params_validation(params, message):
    with pytest.raises(ConfigError) as err:
        parse_params(ShopSim.Params, params)
    assert message in str(err.value)


def test_custom_targets_and_lists_validate():
    p = parse_params(ShopSim.Params, {"providers": ["klarna", "stripe"], "incidents": [
        {"kind": "payment_outage", "at": "5m", "duration": "2m", "target": "klarna"}]})
    assert p.incidents[0].target == "klarna" and p.incidents[0].duration == 120
    # the default schedule stays valid with other lists: empty targets pick the first name
    sim = make_sim(start=START, providers=["klarna"], regions=["mars"], skus=["sku-x"])
    (active,) = sim.active_incidents(START_TS + 25 * 60)
    assert active.targets == ("klarna",)
    assert sim.samples_at(START_TS + 20 * 3600)[0].value > 0
