"""The push source's real HTTP endpoint: JSON lines, Prometheus text, Pushgateway clients,
and requests that are malformed, too large or unauthorised (nothing stored)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, push_to_gateway
from source_helpers import counter, make_source

from alertd.base import SourceError
from alertd.metrics import Metrics


def serve(registry, clock, test, **params):
    """Run `await test(source, client, url)` against a started push source on a free port."""
    async def main():
        metrics = Metrics()
        source = make_source(registry, "push", {"port": 0, **params}, clock, name="events", metrics=metrics)
        await source.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{source.port}") as client:
                await test(source, client, metrics)
        finally:
            await source.close()
    asyncio.run(main())


async def take(source):
    """One poll whose tick committed: the samples handed over, then forgotten by the source."""
    samples = await source.collect()
    source.committed()
    return samples


def test_json_lines_are_accepted_and_handed_over_on_the_next_poll(registry, clock):
    async def test(source, client, metrics):
        body = "\n".join(json.dumps(x) for x in [
            {"name": "orders_total", "value": 1, "labels": {"region": "eu"}},
            {"name": "orders_total", "value": 2, "labels": {"region": "us"}, "ts": 1_700_000_000},
            {"name": "refund_amount", "value": 19.99, "ts": "2024-06-03T08:00:00Z"}]) + "\n"
        r = await client.post("/push", content=body, headers={"Content-Type": "application/x-ndjson"})
        assert (r.status_code, r.json()) == (202, {"accepted": 3})
        r = await client.post("/push", json=[{"name": "orders_total", "value": 5}])  # a JSON array too
        assert r.status_code == 202
        samples = await take(source)
        assert [(s.key, s.ts, s.value) for s in samples] == [
            ('orders_total{region="eu"}', clock.now(), 1.0), ('orders_total{region="us"}', 1_700_000_000.0, 2.0),
            ("refund_amount", 1717401600.0, 19.99), ("orders_total", clock.now(), 5.0)]
        assert await take(source) == []
        assert counter(metrics, "push_samples", "events") == 4
        assert counter(metrics, "push_requests", "events", "202") == 2
    serve(registry, clock, test)


def test_prometheus_text_and_pushgateway_clients(registry, clock):
    async def test(source, client, metrics):
        text = '# TYPE signups_total counter\nsignups_total{plan="pro"} 7\n'
        r = await client.post("/push", content=text, headers={"Content-Type": "text/plain; version=0.0.4"})
        assert r.status_code == 202
        reg = CollectorRegistry()
        Counter("checkouts", "Checkouts", ["shop"], registry=reg).labels("main").inc(3)
        await asyncio.to_thread(push_to_gateway, f"127.0.0.1:{source.port}", job="batch",
                                registry=reg, grouping_key={"instance": "web1"})
        samples = {s.key: s.value for s in await take(source)}
        assert samples['signups_total{plan="pro"}'] == 7
        assert samples['checkouts_total{instance="web1",job="batch",shop="main"}'] == 3
    serve(registry, clock, test)


@pytest.mark.parametrize("body, content_type, words", [
    ('{"name": "a", "value": 1}\n{"name": "b", "value": "lots"}\n', "application/json",
     ['line 2: "value" of b must be a finite number, got \'"lots"\'']),
    ('{"name": "a", "value": 1}\n{"name": "b", "value": 2\n', "application/json", ["line 2 is not JSON"]),
    ('{"name": "a b", "value": 1}', "application/json", ['"name" must be a metric name']),
    ('{"name": "a", "value": 1, "labels": {"bad-name": "x"}}', "application/json", ["'bad-name' is not a label name"]),
    ('{"name": "a", "value": 1, "extra": 2}', "application/json", ["unknown key 'extra'"]),
    ('{"name": "a", "value": NaN}', "application/json", ["finite number"]),
    ("ok 1\nbroken{ 2\n", "text/plain", ["line 2 is not in the Prometheus text format"]),
    ("temp NaN\n", "text/plain", ["push finite numbers only"]),
    (b"x \xff\xfe 1\n", "text/plain", ["not UTF-8"]),
])
def test_malformed_bodies_get_400_with_a_reason_and_nothing_is_stored(registry, clock, body, content_type, words):
    async def test(source, client, metrics):
        r = await client.post("/push", content=body, headers={"Content-Type": content_type})
        assert r.status_code == 400
        error = r.json()["error"]
        assert error.startswith("nothing was stored: ") and all(w in error for w in words), error
        assert await take(source) == []
        assert counter(metrics, "push_requests", "events", "400") == 1
        r = await client.post("/push", json={"name": "after", "value": 1})  # the server goes on
        assert r.status_code == 202
    serve(registry, clock, test)


def test_too_large_unauthorised_and_unknown_requests(registry, clock):
    async def test(source, client, metrics):
        big = "\n".join(json.dumps({"name": "x", "value": i}) for i in range(200))
        r = await client.post("/push", content=big, headers={"Authorization": "Bearer tok-123"})
        assert r.status_code == 413 and "limit is 2048" in r.json()["error"]

        async def chunks():  # no Content-Length: the limit applies while reading
            for _ in range(10):
                yield b'{"name": "x", "value": 1}\n' * 20
        r = await client.post("/push", content=chunks(), headers={"Authorization": "Bearer tok-123"})
        assert r.status_code == 413 and "larger than 2048 bytes" in r.json()["error"]
        r = await client.post("/push", json={"name": "x", "value": 1})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        r = await client.post("/push", json={"name": "x", "value": 1}, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert (await client.post("/elsewhere", content="x")).status_code == 404
        assert (await client.get("/push")).status_code == 401  # authorisation comes first
        assert (await client.get("/push", headers={"Authorization": "Bearer tok-123"})).status_code == 405
        assert (await client.get("/healthz")).status_code == 200
        assert await take(source) == []
        r = await client.post("/push", json={"name": "x", "value": 1}, headers={"Authorization": "Bearer tok-123"})
        assert r.status_code == 202 and len(await take(source)) == 1
    serve(registry, clock, test, token="tok-123", max_body=2048)


def test_a_full_buffer_answers_503_with_retry_after(registry, clock):
    async def test(source, client, metrics):
        assert (await client.post("/push", json=[{"name": "x", "value": 1}] * 3)).status_code == 202
        r = await client.post("/push", json=[{"name": "x", "value": 1}] * 2)
        assert r.status_code == 503 and r.headers["retry-after"] == "10"
        assert len(await take(source)) == 3
    serve(registry, clock, test, max_pending=4)


def test_garbage_instead_of_http_is_refused_and_the_server_goes_on(registry, clock):
    async def test(source, client, metrics):
        reader, writer = await asyncio.open_connection("127.0.0.1", source.port)
        writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400") and b"speaks plain HTTP, not HTTPS" in answer
        assert (await client.post("/push", json={"name": "x", "value": 1})).status_code == 202
    serve(registry, clock, test)


def test_a_taken_port_is_one_sentence(registry, clock):
    async def main():
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = blocker.sockets[0].getsockname()[1]
        source = make_source(registry, "push", {"port": port}, clock)
        try:
            with pytest.raises(SourceError, match=f"cannot listen on 127.0.0.1:{port}: .*choose another port"):
                await source.start()
        finally:
            blocker.close()
    asyncio.run(main())


# -- hostile pushes --------------------------------------------------------------------------------

def test_a_point_stamped_far_ahead_refuses_the_body_and_later_points_are_fine(registry, clock):
    async def test(source, client, metrics):
        r = await client.post("/push", json=[{"name": "orders", "value": 1},
                                             {"name": "orders", "value": 9, "ts": "2100-01-01T00:00:00Z"}])
        assert r.status_code == 400
        assert "1 point(s) are stamped more than 300s ahead of alertd's clock, the first orders at " \
               "2100-01-01T00:00:00+00:00; check the sender's clock" in r.json()["error"]
        ok = await client.post("/push", json={"name": "orders", "value": 2, "ts": clock.now() + 60})  # drift: fine
        assert ok.status_code == 202 and [s.value for s in await take(source)] == [2.0]
        assert counter(metrics, "push_refused", "events", "future_timestamp") == 1
    serve(registry, clock, test)


def test_new_series_beyond_max_series_are_refused_and_known_ones_go_on(registry, clock):
    async def test(source, client, metrics):
        first = [{"name": "cart", "value": 1, "labels": {"user": f"u{i}"}} for i in range(4)]
        assert (await client.post("/push", json=first)).status_code == 202
        r = await client.post("/push", json=first[:2] + [{"name": "cart", "value": 1, "labels": {"user": "u9"}},
                                                         {"name": "cart", "value": 1, "labels": {"user": "u10"}}])
        assert r.status_code == 400 and "the push adds 2 new series and the source has 4 of its max_series 5" \
            in r.json()["error"]
        assert (await client.post("/push", json=first)).status_code == 202  # known series: accepted
        assert len(await take(source)) == 8
        assert counter(metrics, "push_refused", "events", "max_series") == 4
    serve(registry, clock, test, max_series=5)


def test_a_poll_takes_at_most_max_per_poll_and_the_rest_waits(registry, clock):
    async def test(source, client, metrics):
        assert (await client.post("/push", json=[{"name": "x", "value": i} for i in range(5)])).status_code == 202
        assert [s.value for s in await take(source)] == [0, 1, 2]
        assert [s.value for s in await source.collect()] == [3, 4]  # not committed: handed again
        assert [s.value for s in await take(source)] == [3, 4]
        assert await take(source) == []
    serve(registry, clock, test, max_per_poll=3)


def test_cross_site_and_rebinding_requests_are_refused_and_nothing_is_stored(registry, clock):
    async def test(source, client, metrics):
        # what a web page elsewhere can send without a preflight: a text/plain form post
        cross = await client.post("/push", content="orders 1\n", headers={
            "Content-Type": "text/plain", "Origin": "https://evil.example"})
        rebound = await client.post("/push", content="orders 1\n", headers={"Host": "evil.example:9091"})
        same = await client.post("/push", content="orders 2\n", headers={
            "Origin": f"http://127.0.0.1:{source.port}"})
        listed = await client.post("/push", content="orders 3\n", headers={"Host": "push.shop.example"})
        assert (cross.status_code, rebound.status_code, same.status_code, listed.status_code) == (403, 403, 202, 202)
        assert "sources.events.allowed_hosts" in cross.json()["error"]
        assert [s.value for s in await take(source)] == [2.0, 3.0]
    serve(registry, clock, test, allowed_hosts=["push.shop.example"])


def test_slow_connections_cannot_lock_out_pushes(registry, clock):
    """1,100 connections sending a header line every 10 s once exhausted the descriptors: now
    each request has a deadline from its first byte, and the slowest make room for newcomers."""
    async def test(source, client, metrics):
        slow = []
        for _ in range(12):
            reader, writer = await asyncio.open_connection("127.0.0.1", source.port)
            writer.write(b"POST /push HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append((reader, writer))
        await asyncio.sleep(0.05)
        answers = [(await client.post("/push", json={"name": "x", "value": i})).status_code for i in range(3)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        reader, writer = await asyncio.open_connection("127.0.0.1", source.port)

        async def trickle():
            for i in range(100):
                writer.write(b"X-Slow-%d: 1\r\n" % i)
                await asyncio.sleep(0.1)
        trickling = asyncio.create_task(trickle())
        closed = await asyncio.wait_for(reader.read(), 10)  # request_timeout, not 100 lines
        held_for = loop.time() - started
        trickling.cancel()
        for _, w in slow:
            w.close()
        writer.close()
        assert answers == [202, 202, 202] and closed == b"" and held_for < 3
        assert counter(metrics, "connections_shed", "events") >= 8
        assert len(source.slots) <= 4
    serve(registry, clock, test, max_connections=4, request_timeout="1s", idle_timeout="5s")
