"""Rule health: whether each rule is judging anything (engine, /api/v1/rules, /metrics)."""

from __future__ import annotations

import asyncio

import httpx
from configs import NEVER, config_text, rule
from prometheus_client.parser import text_string_to_metric_families
from routing_helpers import Shop

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels

WARM = config_text(rules=[
    {"name": "cpu_warm", "source": "app", "series": 'cpu{host=~".+"}', "for": "10s",
     "detector": {"type": "test_warm", "limit": 90, "window": 3, "min_history": 4}},
    {"name": "cpu_broken", "source": "app", "series": "cpu", "detector": {"type": "test_raising"}},
], plugin_dirs=None)


def health(shop, name):
    return next(h for h in shop.engine.rule_health() if h.name == name)


def test_a_rule_warms_up_then_judges_then_fires(write_config, registry, clock, tmp_path):
    shop = Shop(write_config, registry, clock, tmp_path, WARM)
    try:
        assert health(shop, "cpu_warm").state == "nodata"  # nothing came yet
        assert "no series matching" in health(shop, "cpu_warm").reason
        for _ in range(2):
            shop.advance(5, {"a": 10, "b": 20})
        h = health(shop, "cpu_warm")
        assert (h.state, h.series, h.warmup_points, h.warmup_needed) == ("warming_up", 2, 2, 4)
        assert h.reason == "2 series warming up: 2 of 4 points before the first verdict"
        assert h.last_evaluation == clock.now() and h.series_states["warming_up"] == 2
        for _ in range(3):
            shop.advance(5, {"a": 10, "b": 20})
        h = health(shop, "cpu_warm")
        assert (h.state, h.reason, h.warmup_points) == ("normal", "judging 2 series", 4)
        shop.advance(5, {"a": 95, "b": 20})
        h = health(shop, "cpu_warm")
        assert h.state == "pending" and h.open_incidents == {"pending": 1, "firing": 0}
        shop.advance(15, {"a": 95, "b": 20})
        assert health(shop, "cpu_warm").state == "firing"
        _, count, series = shop.engine.rule_series("cpu_warm")
        assert count == 2 and [(s.labels["host"], s.state) for s in series] == [("a", "firing"), ("b", "normal")]
        assert series[0].incident_id is not None and series[0].last_value == 95 and series[0].points == 7
        _, count, only = shop.engine.rule_series("cpu_warm", state="normal")
        assert count == 1 and only[0].labels["host"] == "b"
        # a series that stops coming is nodata once a poll without it went by
        shop.advance(5, {"a": 95})
        shop.advance(5, {"a": 95})
        states = {s.labels["host"]: s.state for s in shop.engine.rule_series("cpu_warm")[2]}
        assert states == {"a": "firing", "b": "nodata"}
        assert shop.engine.rule_series("nope") is None
    finally:
        shop.close()


def test_a_failing_detector_and_a_failing_source_are_errors(write_config, registry, clock, tmp_path):
    shop = Shop(write_config, registry, clock, tmp_path, WARM)
    try:
        shop.advance(5, {"a": 10})
        h = health(shop, "cpu_broken")
        assert h.state == "error" and h.last_error == "ValueError: detector bug" and h.last_error_at == clock.now()
        assert h.reason == "the detector failed: ValueError: detector bug" and h.last_evaluation is None
        assert shop.engine.rule_series("cpu_broken")[2][0].state == "error"
        assert health(shop, "cpu_warm").state == "warming_up"  # the other rule is fine
        shop.engine.source_failed("app", "connection refused")
        h = health(shop, "cpu_warm")
        assert h.state == "error" and h.reason == 'the source "app" failed its last 1 poll: connection refused'
        shop.advance(5, {"a": 10})
        assert health(shop, "cpu_warm").state == "warming_up"
    finally:
        shop.close()


def test_an_unfitted_model_is_warming_up_with_the_reason(write_config, registry, clock, tmp_path):
    from alertd.engine.training import Trainer
    from alertd.log import get_logger
    text = config_text(rules=[{"name": "orders", "source": "app", "series": "orders", "detector": {
        "type": "pyod", "model": "KNN", "window": 6, "min_history": 20}}])
    shop = Shop(write_config, registry, clock, tmp_path, text)
    try:
        def tick(i):
            clock.advance(60)
            shop.engine.ingest("app", [Sample("orders", make_labels({}), clock.now(), 100.0 + i % 7)])
        for i in range(25):
            tick(i)
        h = health(shop, "orders")
        assert h.state == "warming_up" and h.reason == "the model is not fitted yet (no fit has run yet)"
        trainer = Trainer(shop.engine, shop.store, clock, get_logger(), inline=True)
        trainer.start()
        assert trainer.poll() == 1
        tick(25)
        h = health(shop, "orders")
        assert h.state == "normal" and h.training["fitted_at"] == clock.now() - 60 and h.training["fits"] == 1
        assert h.training["last_result"] == "ok" and h.training["last_reason"] == "first fit"
    finally:
        shop.close()


HTTP = config_text(http={"listen": "127.0.0.1:0"}, sources={"app": {"type": "test_list", "cron": NEVER}},
                   rules=[rule("cpu_high"), {"name": "cpu_broken", "source": "app", "series": "cpu",
                                             "detector": {"type": "test_raising"}}])


def test_rules_api_and_metrics(write_config, registry, clock, tmp_path):
    config = load_config(write_config(HTTP), registry, environ={})

    async def main():
        daemon = Daemon(config, registry, store_path=tmp_path / "h.db", clock=clock)
        await daemon.open_http()
        await daemon.start()
        try:
            daemon.sources["app"].pending = [Sample("cpu", make_labels({"host": "a"}), clock.now(), 95.0)]
            await daemon.poll("app")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web.port}") as client:
                status = (await client.get("/api/v1/status")).json()
                return (await client.get("/api/v1/rules")).json(), (await client.get("/metrics")).text, status
        finally:
            await daemon.drain()

    rules, metrics, status = asyncio.run(main())
    assert status["rules"]["states"] == {"firing": 1, "error": 1}
    assert status["rules"]["not_judging"] == {"cpu_broken": "error: the detector failed: ValueError: detector bug"}
    by_name = {r["name"]: r for r in rules["rules"]}
    assert by_name["cpu_high"]["state"] == "firing" and by_name["cpu_high"]["open_incidents"]["firing"] == 1
    assert by_name["cpu_broken"]["state"] == "error" and "detector bug" in by_name["cpu_broken"]["last_error"]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(metrics) for s in f.samples}
    assert samples[("alertd_rule_state", (("rule", "cpu_high"), ("state", "firing")))] == 1
    assert samples[("alertd_rule_state", (("rule", "cpu_high"), ("state", "normal")))] == 0
    assert samples[("alertd_rule_state", (("rule", "cpu_broken"), ("state", "error")))] == 1
    assert samples[("alertd_rule_last_evaluation_timestamp_seconds", (("rule", "cpu_high"),))] == clock.now()
    assert ("alertd_rule_last_evaluation_timestamp_seconds", (("rule", "cpu_broken"),)) not in samples
    assert samples[("alertd_rule_warmup_points", (("rule", "cpu_high"),))] == 1
    assert samples[("alertd_rule_series", (("rule", "cpu_high"), ("state", "firing")))] == 1
