"""The shop simulator's labelled week: deterministic, labels that agree with the values,
normal days without labels, stock that sells and is delivered, a queue that backs up."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from alertd.base import PluginContext
from alertd.clock import FakeClock
from alertd.config.schema import parse_params
from alertd.default_plugins.sources.shop_sim import WEEK_INCIDENTS, WEEK_START, ShopSim

DAY, H, M = 86400.0, 3600.0, 60.0
START = datetime(2025, 6, 2, tzinfo=timezone.utc).timestamp()  # WEEK_START, a Monday
EU = 'orders_per_minute{region="eu"}'


def make(**params) -> ShopSim:
    return ShopSim(parse_params(ShopSim.Params, {"scenario": "week", "start": WEEK_START, **params}),
                   PluginContext("shop", FakeClock(1_750_000_000.0).now))


class Week:
    """The week and the same shop without incidents, from 7 days before to a day after, 1-min slots."""

    def __init__(self):
        self.sim, self.calm = make(), make(incidents=[])
        self.slots = np.arange(int((START - 7 * DAY) / 60), int((START + 8 * DAY) / 60))
        self.ts = self.slots * 60.0
        keys = [key for _, _, key, _ in self.sim.series]
        self.v = dict(zip(keys, self.sim.values(self.slots)))
        self.c = dict(zip(keys, self.calm.values(self.slots)))
        self.labels = self.sim.labels()

    def at(self, t: float) -> int:
        return int(np.searchsorted(self.ts, t))

    def window(self, start: float, end: float) -> slice:
        return slice(self.at(start), self.at(end))


@pytest.fixture(scope="module")
def week() -> Week:
    return Week()


def test_the_week_is_a_pure_function_of_its_settings(week):
    again = make()
    slots = week.slots[::97]
    assert all(np.array_equal(a, b) for a, b in zip(again.values(slots), week.sim.values(slots)))
    assert again.labels() == week.labels
    one = week.at(START + 3 * DAY + 11 * H)  # one slot alone gives what the whole week gave
    assert [float(c[0]) for c in again.values(week.slots[one:one + 1])] == [float(week.v[k][one]) for k in week.v]
    other = make(seed=7).values(slots)
    assert not np.array_equal(other[0], week.sim.values(slots)[0])


def test_the_labelled_window_is_a_week_from_monday_and_monday_is_normal(week):
    assert week.sim.labelled_window() == (START, START + 7 * DAY)
    assert datetime.fromtimestamp(START, timezone.utc).weekday() == 0
    starts = [lab["start"] for lab in week.labels]
    assert starts == sorted(starts) and min(starts) >= START + DAY and max(starts) < START + 7 * DAY
    assert len({lab["id"] for lab in week.labels}) == len(week.labels) == 14
    # without a start, the week begins on the Monday before the daemon's clock
    clock = FakeClock(datetime(2025, 7, 10, 15, 30, tzinfo=timezone.utc).timestamp())  # a Thursday
    sim = ShopSim(parse_params(ShopSim.Params, {"scenario": "week"}), PluginContext("shop", clock.now))
    assert sim.sim_start == datetime(2025, 7, 7, tzinfo=timezone.utc).timestamp()


def test_the_days_before_the_week_are_normal_and_unlabelled(week):
    assert week.sim.labels(START - 7 * DAY, START) == []
    before = week.window(START - 7 * DAY, START)
    assert all(np.array_equal(week.v[k][before], week.c[k][before]) for k in week.v)


def test_outside_its_labels_every_series_is_the_normal_shop(week):
    """Every change the incidents make is inside a label naming that series (stock aside:
    sales and deliveries move it for longer; the stock tests below)."""
    for key in week.v:
        if key.startswith("stock_level"):
            continue
        quiet = np.ones(len(week.ts), dtype=bool)
        for lab in week.labels:
            for e in lab["effects"]:
                if e["series"] == key:
                    quiet[week.window(e["start"], e["end"])] = False
        assert np.array_equal(week.v[key][quiet], week.c[key][quiet]), key
        primary = [e for lab in week.labels for e in lab["effects"] if e["series"] == key and e["role"] == "primary"]
        for e in primary:
            span = week.window(e["start"], e["end"])
            assert not np.array_equal(week.v[key][span], week.c[key][span]), (key, e)


def test_regional_drops_and_the_spike_have_the_labelled_size(week):
    drops = [lab for lab in week.labels if lab["kind"] == "traffic_drop"]
    assert sorted(lab["facts"]["depth"] for lab in drops) == [0.35, 0.4, 0.5, 0.6, 0.7]
    assert {lab["targets"][0] for lab in drops} == {"eu", "us", "apac"}
    for lab in drops + [lab for lab in week.labels if lab["kind"] == "traffic_spike"]:
        key = f'orders_per_minute{{region="{lab["targets"][0]}"}}'
        span = week.window(lab["start"], lab["end"])
        ratio = week.v[key][span].sum() / week.c[key][span].sum()
        expected = lab["facts"].get("factor") or 1 - lab["facts"]["depth"]
        assert ratio == pytest.approx(expected, rel=0.08), lab["id"]
        for other in ("eu", "us", "apac"):
            if other != lab["targets"][0]:
                k = f'orders_per_minute{{region="{other}"}}'
                assert np.array_equal(week.v[k][span], week.c[k][span])
    # one drop at a region's evening peak, one in its night trough
    eu_hours = sorted((datetime.fromtimestamp(lab["start"], timezone.utc).hour + 1) % 24 for lab in drops
                      if lab["targets"] == ["eu"])
    assert eu_hours == [4, 14, 20]


def test_payment_outage_error_burst_and_the_slow_checkout(week):
    for lab in [lab for lab in week.labels if lab["kind"] == "payment_outage"]:
        span = week.window(lab["start"], lab["end"])
        for p in ("stripe", "adyen", "paypal"):
            ratios = week.v[f'payment_success_ratio{{provider="{p}"}}'][span]
            assert (ratios < 0.6).all() if p in lab["targets"] else (ratios > 0.95).all()
    (burst,) = [lab for lab in week.labels if lab["kind"] == "error_burst"]
    assert (week.v["http_5xx_rate"][week.window(burst["start"], burst["end"])] > 0.05).all()
    assert week.c["http_5xx_rate"].max() < 0.01
    (slow,) = [lab for lab in week.labels if lab["kind"] == "latency_degradation"]
    span = week.window(slow["start"], slow["end"])
    assert (week.v["checkout_latency_p95_ms"][span] > 2.5 * week.c["checkout_latency_p95_ms"][span]).all()


def test_the_order_queue_backs_up_while_checkout_is_slow_and_drains_after(week):
    (slow,) = [lab for lab in week.labels if lab["kind"] == "latency_degradation"]
    (queue,) = [e for e in slow["effects"] if e["series"] == "order_queue_backlog"]
    assert queue["start"] == slow["start"] and slow["end"] < queue["end"] == slow["facts"]["backlog_drained_at"]
    backlog, normal = week.v["order_queue_backlog"], week.c["order_queue_backlog"]
    excess = (backlog - normal)[week.window(slow["start"], queue["end"] + 10 * M)]
    peak = int(np.argmax(excess))
    assert peak == pytest.approx((slow["end"] - slow["start"]) / 60, abs=1)  # grows until checkout recovers
    assert (np.diff(excess[:peak]) > 0).all() and (np.diff(excess[peak:-10]) < 0).all()
    assert excess[peak] == slow["facts"]["backlog_peak"] > 1000 > 5 * normal.max()
    assert (excess[-10:] == 0).all()  # drained when the label says


def test_the_memory_leak_creeps_to_the_limit_then_the_service_restarts(week):
    (leak,) = [lab for lab in week.labels if lab["kind"] == "memory_leak"]
    memory = week.v["memory_used_ratio"]
    hourly = [memory[week.window(leak["start"] + h * H, leak["start"] + (h + 1) * H)].mean() for h in range(9)]
    assert all(b > a for a, b in zip(hourly, hourly[1:])) and leak["end"] - leak["start"] == 9 * H
    assert memory[week.at(leak["end"]) - 1] > 0.95 and memory[week.at(leak["end"])] < 0.75
    assert week.c["memory_used_ratio"].max() < 0.8


def test_stock_outs_start_when_the_stock_hits_zero_and_end_at_the_delivery(week):
    outs = [lab for lab in week.labels if lab["kind"] == "stock_out"]
    causes = sorted(s.kind for s in WEEK_INCIDENTS if s.kind.startswith("restock"))
    assert len(outs) == len(causes) == 3  # every late or missed delivery runs a SKU out
    assert sorted("late" if lab["facts"].get("late_by_s") else "missed" for lab in outs) == ["late", "late", "missed"]
    zero_in_labels = {}
    for lab in outs:
        level = week.v[f'stock_level{{sku="{lab["targets"][0]}"}}']
        a, b = week.at(lab["start"]), week.at(lab["end"])
        assert level[a - 1] > 0 and (level[a:b] == 0).all() and level[b] > 0, lab["id"]
        assert lab["start"] > lab["facts"]["delivery_due"]
        zero_in_labels.setdefault(lab["targets"][0], []).append((a, b))
    week_span = week.window(START, START + 7 * DAY)
    for sku in ("sku-tshirt", "sku-hoodie", "sku-mug", "sku-cap"):
        zero = week.v[f'stock_level{{sku="{sku}"}}'] == 0
        for a, b in zero_in_labels.get(sku, []):
            zero[a:b] = False
        assert not zero[week_span].any(), sku  # no stock-out without a label


def test_stock_sells_with_the_orders_and_deliveries_leave_hours_of_sales(week):
    orders = sum(week.v[f'orders_per_minute{{region="{r}"}}'] for r in ("eu", "us", "apac"))
    tshirt = week.v['stock_level{sku="sku-tshirt"}']
    sold = -np.diff(tshirt)
    steady = (sold >= 0) & (tshirt[1:] > 0)  # no delivery, not sold out
    assert np.corrcoef(sold[steady], orders[1:][steady])[0, 1] > 0.5
    assert sold[steady].sum() == pytest.approx(0.08 * orders[1:][steady].sum(), rel=0.05)
    stock = week.sim.model.stock
    margins = []
    for sku, plan in stock.plans.items():
        level = week.v[f'stock_level{{sku="{sku}"}}']
        for d in stock.deliveries(plan, week.ts[0] + DAY, week.ts[-1]):
            i = int(d.slot - week.slots[0])
            if d.note or not 60 < i < len(level) or level[i - 1] == 0:
                continue  # off schedule, or the one that ends a stock-out
            last_hour = level[i - 61] - level[i - 1]
            margins.append(level[i - 1] / last_hour)
    assert len(margins) > 70 and min(margins) > 2.5  # hours of sales left at the last hour's pace


def test_labels_are_plain_json_data(week):
    data = json.loads(json.dumps(week.sim.describe()))
    assert data["scenario"] == "week" and data["start"] == START and data["end"] == START + 7 * DAY
    assert {s["series"] for s in data["series"]} == set(week.v)
    assert [p["sku"] for p in data["stock"]] == ["sku-tshirt", "sku-hoodie", "sku-mug", "sku-cap"]
    drop = next(lab for lab in data["labels"] if lab["kind"] == "traffic_drop")
    assert drop["start_utc"] == "2025-06-03T19:30:00Z" and drop["targets"] == ["eu"]
    assert drop["note"] == "eu orders -60%, 30 min from Tue 20:30 eu time"
    (primary,) = [e for e in drop["effects"] if e["role"] == "primary"]
    assert primary == {"series": EU, "metric": "orders_per_minute", "labels": {"region": "eu"}, "role": "primary",
                       "start": drop["start"], "end": drop["end"]}
    assert {e["role"] for e in drop["effects"]} == {"primary", "secondary"}


def test_the_demo_is_the_demo_it_always_was():
    """The demo scenario's values (stock aside, which now sells with the orders) are those of
    alertd 0.1: two days of 2-minute slots summed, as the old simulator gave them."""
    sim = ShopSim(parse_params(ShopSim.Params, {"start": "2025-06-03T00:00:00Z", "step": "2m"}),
                  PluginContext("shop", FakeClock(1_750_000_000.0).now))
    slots = np.arange(int(sim.sim_start / 120), int(sim.sim_start / 120) + 2 * 720)
    sums = {key: float(c.sum()) for (_, _, key, _), c in zip(sim.series, sim.values(slots))}
    assert sums[EU] == 92754.0 and sums['orders_per_minute{region="us"}'] == 104954.0
    assert sums['orders_per_minute{region="apac"}'] == 53337.0
    assert sums['payment_success_ratio{provider="stripe"}'] == pytest.approx(1368.986985, abs=1e-6)
    assert sums["checkout_latency_p95_ms"] == pytest.approx(600291.261598, abs=1e-6)
    assert sums["http_5xx_rate"] == pytest.approx(9.18821, abs=1e-6)
    kinds = [lab["kind"] for lab in sim.labels()]
    assert kinds == ["payment_outage", "traffic_spike", "latency_degradation", "stock_out", "traffic_collapse"]


def test_your_own_incidents_are_labelled_too():
    sim = make(cycle=0, incidents=[
        {"kind": "restock_missed", "at": "1d", "target": "sku-cap"},
        {"kind": "traffic_drop", "at": "30h", "duration": "20m", "target": "us", "depth": 0.3}])
    drop, out = sim.labels()
    assert drop["kind"] == "traffic_drop" and drop["start"] == START + 30 * H and drop["facts"] == {"depth": 0.3}
    assert out["kind"] == "stock_out" and out["targets"] == ["sku-cap"] and out["facts"]["missed"]
    assert out["facts"]["delivery_due"] == START + DAY + 5 * H  # the cap's daily 05:00 delivery
    assert out["end"] == START + 2 * DAY + 5 * H and out["cause"] == "the Tue 05:00 UTC delivery did not come"
    assert sim.labelled_window()[1] >= out["end"]
