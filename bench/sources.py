"""Benchmarks of the issue-5 sources (results in docs/benchmarks.md, "Issue 5").

    .venv/bin/python bench/sources.py [http_json|logfile|push|all] [--quick]

- http_json: 200 http_json sources, each polling its own URL on one local server (a separate
  process), polled together as one scheduler tick through `Daemon.poll` (HTTP, JMESPath,
  engine ingest into a real SQLite store). Reports median and p99 tick time.
- logfile: lines per second parsed by one logfile source (two metrics: 5xx per upstream and
  average latency per upstream) on a generated nginx access log, in one thread.
- push: samples per second accepted by a push source from a client in another process
  (batches of 1,000 JSON lines, keep-alive), and the same for Prometheus text.

Only loopback is used. Numbers depend on the machine: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alertd.base import PluginContext  # noqa: E402
from alertd.clock import FakeClock  # noqa: E402
from alertd.config.load import load_config  # noqa: E402
from alertd.config.schema import parse_params  # noqa: E402
from alertd.daemon.core import Daemon  # noqa: E402
from alertd.log import configure  # noqa: E402
from alertd.plugins import load_registry  # noqa: E402

STATUS = json.dumps({"providers": [{"name": n, "ok": 0.99, "latency_ms": 120} for n in ("stripe", "adyen")],
                     "queue": {"depth": 7}}).encode()


# -- http_json -----------------------------------------------------------------------------
def _json_server(port_queue) -> None:
    """A minimal keep-alive HTTP/1.1 server answering every GET with STATUS (own process)."""
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(STATUS)).encode() + b"\r\n\r\n" + STATUS)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()
    asyncio.run(main())


def bench_http_json(ticks: int, endpoints: int = 200) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return _bench_http_json(Path(tmp), ticks, endpoints)


def _bench_http_json(tmp: Path, ticks: int, endpoints: int) -> dict:
    queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_json_server, args=(queue,), daemon=True)
    server.start()
    port = queue.get(timeout=10)
    sources = "\n".join(
        f'  ep{i}: {{type: http_json, every: 10s, url: "http://127.0.0.1:{port}/ep/{i}", metrics: ['
        f'{{name: psp_success_ratio, items: providers, value: ok, labels: {{provider: name}}}}, '
        f'{{name: queue_depth, value: queue.depth}}]}}' for i in range(endpoints))
    (tmp / "alertd.yaml").write_text(f"sources:\n{sources}\n")
    registry = load_registry(entrypoints=False)
    config = load_config(tmp / "alertd.yaml", registry, environ={})
    clock = FakeClock()

    async def main():
        daemon = Daemon(config, registry, store_path=tmp / "alertd.db", clock=clock)
        await daemon.open()
        names = list(config.sources)
        times = []
        for _ in range(ticks + 2):
            started = time.perf_counter()
            await asyncio.gather(*(daemon.poll(n) for n in names))
            times.append(time.perf_counter() - started)
            clock.advance(10)
        errors = sum(s.value for m in daemon.metrics.source_errors.collect() for s in m.samples
                     if s.name.endswith("_total"))
        stored = daemon.store.samples.count()
        await daemon.drain()
        return times[2:], errors, stored  # the first two warm up connections and series rows
    try:
        times, errors, stored = asyncio.run(main())
    finally:
        server.terminate()
    times.sort()
    return {"endpoints": endpoints, "ticks": len(times), "median_s": statistics.median(times),
            "p99_s": times[min(len(times) - 1, int(0.99 * len(times)))], "errors": errors,
            "samples_stored": stored}


# -- logfile -------------------------------------------------------------------------------
def bench_logfile(lines: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return _bench_logfile(Path(tmp), lines)


def _bench_logfile(tmp: Path, lines: int) -> dict:
    path = tmp / "access.log"
    upstreams = ["checkout", "search", "catalog", "payments"]
    statuses = [200] * 45 + [301, 404, 500, 502, 503]
    with path.open("w") as f:
        for i in range(lines):
            f.write(f'10.0.{i % 250}.{i % 200} - - [03/Jun/2024:08:00:{i % 60:02d} +0000] "GET /product/{i % 977} '
                    f'HTTP/1.1" {statuses[i % 50]} {512 + i % 900} "-" "Mozilla/5.0" '
                    f"upstream={upstreams[i % 4]} rt={(i % 1000) / 1000:.3f}\n")
    registry = load_registry(entrypoints=False)
    cls = registry.get("source", "logfile")
    params = parse_params(cls.Params, {"path": str(path), "start_at": "beginning", "max_read": 1 << 30, "metrics": [
        {"name": "http_5xx", "regex": r'" (?P<status>5\d\d) .*upstream=(?P<upstream>\S+)'},
        {"name": "upstream_seconds", "regex": r"upstream=(?P<upstream>\S+) rt=(?P<rt>[0-9.]+)",
         "value": "rt", "aggregate": "avg"}]})
    results = []
    for _ in range(3):
        source = cls(params, PluginContext(name="nginx", now=time.time))
        started = time.perf_counter()
        chunk, found = source._read_and_match()
        results.append(time.perf_counter() - started)
        n5xx = sum(a.n for a in found[0].values())
    size = path.stat().st_size
    return {"lines": lines, "bytes": size, "median_s": statistics.median(results),
            "lines_per_s": lines / statistics.median(results), "matched_5xx": n5xx}


# -- push ----------------------------------------------------------------------------------
def _push_client(port: int, requests: int, body: bytes, content_type: str, out) -> None:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        started = time.perf_counter()
        for _ in range(requests):
            r = client.post("/push", content=body, headers={"Content-Type": content_type})
            assert r.status_code == 202, r.text
        out.put(time.perf_counter() - started)


def bench_push(requests: int, batch: int = 1000) -> dict:
    registry = load_registry(entrypoints=False)
    cls = registry.get("source", "push")
    json_body = "".join(json.dumps({"name": "orders_total", "value": i, "labels": {"region": f"r{i % 5}"}}) + "\n"
                        for i in range(batch)).encode()
    text_body = "".join(f'orders_total{{region="r{i % 5}",n="{i}"}} {i}\n' for i in range(batch)).encode()
    out = {}
    for kind, body, ctype in (("json_lines", json_body, "application/x-ndjson"),
                              ("prometheus_text", text_body, "text/plain")):
        async def main():
            source = cls(parse_params(cls.Params, {"port": 0, "max_pending": 10 ** 9}),
                         PluginContext(name="events", now=time.time, interval=1.0))
            await source.start()
            results = multiprocessing.Queue()
            client = multiprocessing.Process(target=_push_client,
                                             args=(source.port, requests, body, ctype, results))
            client.start()
            drained = 0
            while client.is_alive():
                await asyncio.sleep(0.2)  # the poll interval of a push source
                drained += len(await source.collect())
            drained += len(await source.collect())
            client.join()
            await source.close()
            return drained, results.get(timeout=5)
        drained, elapsed = asyncio.run(main())
        # elapsed: the client's time from its first request to its last 202 answer
        out[kind] = {"samples": drained, "client_s": elapsed, "samples_per_s": drained / elapsed}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all", choices=["all", "http_json", "logfile", "push"])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args()
    configure("error", json_lines=True, stream=open(os.devnull, "w"))
    q = args.quick
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    if args.which in ("all", "http_json"):
        print("http_json", json.dumps(bench_http_json(5 if q else 50)))
    if args.which in ("all", "logfile"):
        print("logfile", json.dumps(bench_logfile(50_000 if q else 1_000_000)))
    if args.which in ("all", "push"):
        print("push", json.dumps(bench_push(20 if q else 300)))


if __name__ == "__main__":
    main()
