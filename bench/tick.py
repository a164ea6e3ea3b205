"""Benchmark: one full tick (collect -> store -> zscore detect -> incidents -> outbox).

    .venv/bin/python bench/tick.py [--series 1000 10000] [--ticks 30]

An in-memory source makes one sample per series per tick (1% of series jump to an anomaly
halfway, so incidents open and fire); the store is a real SQLite file (WAL). Reports the
median and p90 milliseconds per tick after warm-up, and samples/s end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alertd import hookimpl  # noqa: E402
from alertd.base import Source  # noqa: E402
from alertd.clock import FakeClock  # noqa: E402
from alertd.config.load import load_config  # noqa: E402
from alertd.engine.tick import Engine  # noqa: E402
from alertd.log import configure, get_logger  # noqa: E402
from alertd.metrics import Metrics  # noqa: E402
from alertd.model import Sample, make_labels  # noqa: E402
from alertd.plugins import load_registry  # noqa: E402
from alertd.store import Store  # noqa: E402


class MemorySource(Source):
    """n series of noisy values; `anomalous` series jump after `jump_at` ticks."""

    type_name = "bench_memory"

    @dataclass(frozen=True)
    class Params:
        series: int = 1000
        anomalous_every: int = 100  # every n-th series jumps (series 0, n, 2n, ...: dc0 and dc2)

    def __init__(self, params, context):
        super().__init__(params, context)
        n = params.series
        self.labels = [make_labels({"host": f"h{i:05d}", "dc": f"dc{i % 4}"}) for i in range(n)]
        self.rng = np.random.default_rng(1)
        self.tick = 0
        self.anomalous = np.zeros(n, dtype=bool)
        self.anomalous[:: params.anomalous_every] = True

    async def collect(self):
        self.tick += 1
        values = 100 + self.rng.normal(0, 5, len(self.labels))
        if self.tick > 45:
            values[self.anomalous] += 500
        ts = self.context.now()
        return [Sample("latency_ms", lab, ts, float(v)) for lab, v in zip(self.labels, values)]


@hookimpl
def register_sources(register):
    register(MemorySource)


CONFIG = """\
store: bench.db
sources:
  mem: {{type: bench_memory, every: 5s, series: {n}}}
rules:
  - name: latency
    source: mem
    series: latency_ms
    detector: {{type: zscore, window: 30, threshold: 6, min_history: 10}}
    for: 10s
receivers:
  null: [{{type: console, stream: stderr}}]
"""


def run(n: int, ticks: int, warmup: int) -> dict:
    registry = load_registry(entrypoints=False)
    registry.add_module(sys.modules[__name__], "bench", "bench_memory")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertd.yaml"
        path.write_text(CONFIG.format(n=n))
        config = load_config(path, registry, environ={})
        clock = FakeClock()
        store = Store(Path(tmp) / "bench.db")
        engine = Engine(config, registry, store, clock, Metrics(), get_logger())
        from alertd.base import PluginContext
        source = MemorySource(config.sources["mem"].params, PluginContext("mem", clock.now))
        times, fired = [], 0
        for i in range(warmup + ticks):
            clock.advance(5)
            started = time.perf_counter()
            samples = asyncio.run(source.collect())
            result = engine.ingest("mem", samples)
            elapsed = time.perf_counter() - started
            fired += sum(t.kind == "firing" for t in result.transitions)
            if i >= warmup:
                times.append(elapsed)
        store.close()
    med = statistics.median(times)
    return {"series": n, "median_ms": med * 1000, "p90_ms": np.percentile(times, 90) * 1000,
            "samples_per_s": n / med, "incidents_fired": fired}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--ticks", type=int, default=30)
    args = parser.parse_args()
    configure("error", json_lines=True, stream=open(os.devnull, "w"))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'series':>8} {'median ms/tick':>15} {'p90 ms':>8} {'samples/s':>11} {'fired':>6}")
    for n in args.series:
        r = run(n, args.ticks, warmup=40)
        print(f"{r['series']:>8} {r['median_ms']:>15.1f} {r['p90_ms']:>8.1f} {r['samples_per_s']:>11,.0f} "
              f"{r['incidents_fired']:>6}")


if __name__ == "__main__":
    main()
