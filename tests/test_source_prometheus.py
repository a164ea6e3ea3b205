"""The prometheus source against a real Prometheus server (Debian's `prometheus` package).

The module starts Prometheus once on a free loopback port with a temporary config and
storage, scraping an exporter served here with prometheus_client every 500ms. Readiness
and the first scrapes are awaited by bounded polling of Prometheus' own endpoints.
"""

from __future__ import annotations

import asyncio
import shutil
import time

import httpx
import pytest
from processes import serve
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from servers import free_port, http_server  # noqa: F401  (fixture)
from source_helpers import make_source

from alertd.base import SourceError
from alertd.clock import SystemClock
from alertd.config.load import load_config
from alertd.daemon.core import Daemon

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def _wait(what: str, check, timeout: float = 60.0):
    """Poll an external process' state until `check()` is truthy (bounded)."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        try:
            result = check()
            if result:
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"Prometheus did not get {what} within {timeout:g}s")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """(prometheus URL, exporter gauge) with at least eight scrapes (4s) stored."""
    tmp = tmp_path_factory.mktemp("prometheus")
    registry = CollectorRegistry()
    gauge = Gauge("shop_orders_per_minute", "Orders per minute", ["region"], registry=registry)
    gauge.labels("eu").set(120)
    gauge.labels("us").set(80)
    exporter, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = free_port()
    (tmp / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 500ms, evaluation_interval: 1s}}
scrape_configs:
  - job_name: shop
    static_configs: [{{targets: ["127.0.0.1:{exporter.server_address[1]}"]}}]
""")
    argv = [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    url = f"http://127.0.0.1:{port}"
    try:
        with serve(argv, f"{url}/-/ready", tmp / "prometheus.log", name="prometheus"):
            count = 'count_over_time(shop_orders_per_minute{region="eu"}[1m])'
            _wait("eight scrapes", lambda: (r := httpx.get(f"{url}/api/v1/query", params={"query": count},
                                                            timeout=2).json()["data"]["result"])
                  and float(r[0]["value"][1]) >= 8)
            yield url, gauge
    finally:
        exporter.shutdown()
        exporter.server_close()


def run(coro):
    return asyncio.run(coro)


def test_vector_results_become_series_with_their_labels(prometheus, registry):
    url, _ = prometheus
    source = make_source(registry, "prometheus", {"url": url, "queries": {
        "orders_per_minute": "shop_orders_per_minute",
        "orders_total_per_minute": "sum(shop_orders_per_minute)"}}, SystemClock())
    before = time.time()
    samples = {s.key: s for s in run(source.collect())}
    key = 'orders_per_minute{instance="%s",job="shop",region="eu"}'
    eu = next(s for k, s in samples.items() if k.startswith("orders_per_minute") and 'region="eu"' in k)
    assert eu.value == 120.0 and abs(eu.ts - before) < 5
    assert key.split("{")[0] == eu.name and dict(eu.labels)["job"] == "shop"
    assert "__name__" not in dict(eu.labels)
    assert samples["orders_total_per_minute"].value == 200.0 and samples["orders_total_per_minute"].labels == ()


def test_single_query_is_named_by_metric_name_or_source_and_scalars_work(prometheus, registry):
    url, _ = prometheus
    raw = make_source(registry, "prometheus", {"url": url, "query": 'shop_orders_per_minute{region="us"}'},
                      SystemClock(), name="prom")
    (sample,) = run(raw.collect())
    assert sample.name == "shop_orders_per_minute" and sample.value == 80.0
    scalar = make_source(registry, "prometheus", {"url": url, "query": "scalar(sum(shop_orders_per_minute))"},
                         SystemClock(), name="prom")
    (sample,) = run(scalar.collect())
    assert sample.name == "prom" and sample.labels == () and sample.value == 200.0


def test_a_rejected_query_is_one_sentence_with_prometheus_reason(prometheus, registry):
    url, _ = prometheus
    source = make_source(registry, "prometheus", {"url": url, "query": "sum(shop_orders_per_minute"},
                         SystemClock())
    with pytest.raises(SourceError) as info:
        run(source.collect())
    assert info.value.reason == "query"
    assert "rejected the query 'sum(shop_orders_per_minute'" in str(info.value)
    assert "bad_data" in str(info.value)


def test_nan_and_empty_results(prometheus, registry):
    url, _ = prometheus
    source = make_source(registry, "prometheus", {"url": url, "queries": {
        "ratio": "shop_orders_per_minute - shop_orders_per_minute + (0/0)", "none": "absent_metric"}},
        SystemClock())
    samples = run(source.collect())
    assert samples and all(s.name == "ratio" and s.value != s.value for s in samples)  # NaN: the engine drops it


def test_backfill_uses_range_queries_at_the_step(prometheus, registry):
    url, _ = prometheus
    source = make_source(registry, "prometheus", {"url": url, "query": "shop_orders_per_minute", "step": "1s"},
                         SystemClock())
    end = time.time()
    samples = run(source.backfill(end - 30, end))
    eu = sorted(s.ts for s in samples if dict(s.labels)["region"] == "eu")
    assert len(eu) >= 3 and all(b - a == pytest.approx(1.0) for a, b in zip(eu, eu[1:]))
    assert all(end - 30 <= s.ts < end for s in samples)
    assert {s.value for s in samples if dict(s.labels)["region"] == "us"} == {80.0}


CONFIG = """
sources:
  prom: {{type: prometheus, every: 1s, url: "{url}", queries: {{orders: shop_orders_per_minute}}}}
rules:
{rules}
receivers:
  console: [{{type: console}}]
"""
RULE = """  - name: {name}
    source: prom
    series: orders{{region="{region}"}}
    detector: {{type: test_warm, limit: 1000, window: 4, min_history: 4}}
"""


def _daemon(write_config, registry, tmp_path, url, rules):
    path = write_config(CONFIG.format(url=url, rules="".join(RULE.format(name=n, region=r) for n, r in rules)))
    return Daemon(load_config(path, registry, environ={}), registry, store_path=tmp_path / "alertd.db")


def test_daemon_backfills_on_first_start_and_for_new_rules_only(prometheus, registry, write_config, tmp_path):
    url, _ = prometheus

    async def start(rules):
        daemon = _daemon(write_config, registry, tmp_path, url, rules)
        await daemon.open()
        await daemon.backfill()
        rows = daemon.store.db.execute(
            "SELECT s.key, COUNT(*), COUNT(DISTINCT ts) FROM samples JOIN series s ON s.id = series_id "
            "GROUP BY s.key").fetchall()
        done = sorted(r["key"] for r in daemon.store.db["kv"].rows if r["key"].startswith("backfilled:"))
        seen = {rt.rule.name: int(rt.windows.seen[:len(rt.windows.keys)].sum())
                for rt in daemon.engine.rules_by_source["prom"]}
        await daemon.drain()
        return {k: (n, d) for k, n, d in rows}, done, seen

    rows, done, seen = run(start([("eu_orders", "eu")]))
    eu = [k for k in rows if 'region="eu"' in k]
    assert len(eu) == 1 and rows[eu[0]][0] >= 2 and not [k for k in rows if 'region="us"' in k]
    assert done == ['backfilled:prom:eu_orders:orders{region="eu"}']
    assert seen["eu_orders"] >= 2  # the detector's history is warm before the first poll

    rows2, done2, seen2 = run(start([("eu_orders", "eu"), ("us_orders", "us")]))
    assert len(done2) == 2
    us = [k for k in rows2 if 'region="us"' in k]
    assert len(us) == 1 and rows2[us[0]][0] >= 2 and seen2["us_orders"] >= 2
    assert all(n == distinct for n, distinct in rows2.values())  # nothing stored twice


def test_auth_and_form_parameters_reach_the_api(registry, http_server, clock):
    """What alertd sends (checked on a recording server in front of nothing)."""
    http_server.respond(200, {"Content-Type": "application/json"},
                        '{"status": "success", "data": {"resultType": "vector", "result": [], '
                        '"warnings": ["partial"]}}')
    source = make_source(registry, "prometheus", {"url": http_server.url + "/prom/", "query": "up",
                                                  "bearer_token": "tok-abcdef"}, clock, timeout=10)
    assert run(source.collect()) == []
    request = http_server.requests[0]
    assert request.path == "/prom/api/v1/query" and request.method == "POST"
    assert request.headers["authorization"] == "Bearer tok-abcdef"
    form = dict(pair.split("=") for pair in request.body.decode().split("&"))
    assert form == {"query": "up", "time": f"{clock.now():.3f}", "timeout": "9.000"}


def test_a_proxy_error_page_in_front_of_prometheus(registry, http_server, clock):
    http_server.respond(503, {"Content-Type": "text/html"}, "<html><title>Service Unavailable</title></html>")
    source = make_source(registry, "prometheus", {"url": "http://ops:pw-secret@" + http_server.url[7:],
                                                  "query": "up"}, clock)
    with pytest.raises(SourceError) as info:
        run(source.collect())
    assert info.value.reason == "http_status" and "'Service Unavailable'" in str(info.value)
    assert "pw-secret" not in str(info.value) and "ops" not in str(info.value)
