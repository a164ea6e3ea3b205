"""End to end without real time: shop_sim (fixed seed) -> engine -> outbox -> dispatcher."""

from __future__ import annotations

import asyncio
import sys

from alertd.base import PluginContext
from alertd.config.load import load_config
from alertd.delivery.worker import OutboxWorker
from alertd.engine.tick import Engine
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.store import Store

CONFIG = """\
sources:
  shop: {type: shop_sim, every: 2s, speed: 60, step: 2m, seed: 7}
rules:
  - name: payment_success_drop
    source: shop
    series: payment_success_ratio{provider=~".+"}
    detector: {type: threshold, below: 0.9, clear_below: 0.95}
    for: 4m
    clear_for: 4m
    severity: critical
  - name: orders_anomaly
    source: shop
    series: orders_per_minute
    detector: {type: zscore, window: 30, threshold: 6}
    for: 6m
receivers:
  pager: [{type: test_record}]
routes:
  receiver: pager
  group_wait: 0s       # notify in the tick that fires (the daemon clock moves 2s per tick here)
  group_interval: 10s
"""


def test_injected_payment_outage_fires_once_notifies_once_and_resolves(write_config, registry, clock, tmp_path):
    config = load_config(write_config(CONFIG), registry, environ={})
    store = Store(tmp_path / "e2e.db")
    metrics, log = Metrics(), get_logger()
    source_cls = registry.get("source", "shop_sim")
    source = source_cls(config.sources["shop"].params, PluginContext("shop", clock.now, log, store=store))
    engine = Engine(config, registry, store, clock, metrics, log)
    notifier = registry.get("notifier", "test_record")(
        config.receivers["pager"][0].params, PluginContext("pager", clock.now))
    dispatcher = OutboxWorker(store, {("pager", 0): notifier}, clock, metrics, log)
    sent = sys.modules[type(notifier).__module__].SENT  # the module the registry loaded
    sent.clear()

    engine.ingest("shop", asyncio.run(source.backfill(clock.now() - 7200, clock.now())), alerts=False)
    transitions = []
    for _ in range(40):  # 80 real seconds = 80 shop minutes: the outage runs 20m..35m shop time
        clock.advance(2)
        result = engine.ingest("shop", asyncio.run(source.collect()))
        transitions += [(t.kind, t.incident.rule, t.incident.labels.get("provider")) for t in result.transitions]
        engine.router.flush_due()  # the group timer's work in the daemon
        asyncio.run(dispatcher.run_once())

    assert transitions == [("firing", "payment_success_drop", "stripe"),
                           ("resolved", "payment_success_drop", "stripe")]
    assert [(n.kind, n.receiver) for n in sent] == [("firing", "pager"), ("resolved", "pager")]
    (incident,) = store.incidents.list(include_closed=True)
    assert incident.state == "resolved" and incident.labels == {"provider": "stripe"}
    assert incident.count >= 5 and incident.last_value > 0.9
    assert store.outbox.pending_count() == 0
    store.close()


def test_demo_config_anomaly_rules_catch_injected_incidents_and_stay_quiet_otherwise(registry, clock):
    """The shipped alertd.yaml: the payment outage fires within a minute of the start, and
    the anomaly rules (the default pyod detector) fire on injected traffic and latency
    incidents and never on the normal daily rhythm."""
    from pathlib import Path

    from alertd.engine.training import Trainer
    from alertd.plugins import load_registry

    root = Path(__file__).resolve().parent.parent
    demo_registry = load_registry([root / "plugins"], entrypoints=False)
    config = load_config(root / "alertd.yaml", demo_registry, environ={})
    store, log = Store(":memory:"), get_logger()
    source = demo_registry.get("source", "shop_sim")(config.sources["shop"].params,
                                                     PluginContext("shop", clock.now, log, store=store))
    engine = Engine(config, demo_registry, store, clock, Metrics(), log, integrations={})
    trainer = Trainer(engine, store, clock, log, inline=True)
    trainer.start()
    every = config.sources["shop"].every
    span = max(rt.detector.training_plan().points for rt in engine.rules_by_source["shop"]
               if rt.detector.trainable) * every * 1.2  # what the daemon's back-fill asks for
    engine.ingest("shop", asyncio.run(source.backfill(clock.now() - span, clock.now())), alerts=False)
    trainer.poll()
    fired = []
    for tick in range(int(12 * 3600 / 120)):  # 12 shop hours, one 2-minute step per poll
        clock.advance(every)
        result = engine.ingest("shop", asyncio.run(source.collect()))
        trainer.poll()
        recent = {i.kind for t in (source.sim_now(), source.sim_now() - 600) for i in source.active_incidents(t)}
        fired += [(tick, t.incident.rule, recent) for t in result.transitions if t.kind == "firing"]
    assert fired[0][:2] == (fired[0][0], "payment_success_drop") and fired[0][0] * every <= 60
    anomaly = [(tick, rule, kinds) for tick, rule, kinds in fired
               if rule in ("orders_anomaly", "checkout_latency_high")]
    assert all(kinds for _, _, kinds in anomaly), anomaly  # no false alarm on the daily cycle
    caught = set().union(*(kinds for _, _, kinds in anomaly))
    assert {"traffic_spike", "traffic_collapse", "latency_degradation"} <= caught
    store.close()
