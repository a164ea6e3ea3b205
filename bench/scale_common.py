"""Helpers shared by the issue-8 scale benchmarks (bench/scale.py, bench/latency.py, bench/store.py).

An in-memory source of n series (`bench_series`, values drawn as numpy arrays), a config
writer for the default detector, the machine line, VmRSS, percentiles, and `build()`: a
store with `history` ticks of every series and a fitted, persisted model, made through the
real daemon (polls on a fake clock, the trainer inline) so a later start restores it.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alertd import hookimpl  # noqa: E402
from alertd.base import Source  # noqa: E402
from alertd.model import Sample, make_labels  # noqa: E402

INTERVAL = 10.0


class SeriesSource(Source):
    """n series (`latency_ms{host, dc}`) around 100 with noise; `jump(i)` makes series i
    read 10x its level from the next poll on (an anomaly every detector sees)."""

    type_name = "bench_series"

    @dataclass(frozen=True)
    class Params:
        series: int = 1000
        seed: int = 1
        first: int = 0  # the number of the first host (sources that split a fleet between them)
        daily: float = 0.0  # a daily rhythm: +-this share of the level (bench/forecast.py)

    def __init__(self, params, context):
        super().__init__(params, context)
        n = params.series
        self.labels = [make_labels({"host": f"h{i:05d}", "dc": f"dc{i % 4}"})
                       for i in range(params.first, params.first + n)]
        self.level = np.random.default_rng(params.seed).uniform(50, 150, n)
        self.rng = np.random.default_rng(params.seed + 1)
        self.jumped = np.zeros(n, dtype=bool)
        self.collected_at = 0.0  # perf_counter when the last poll's samples were ready

    def jump(self, i: int) -> None:
        self.jumped[i] = True

    async def collect(self):
        values = self.level + self.rng.normal(0, 1, len(self.labels)) * np.sqrt(self.level)
        values[self.jumped] *= 10
        ts = self.context.now()
        if self.params.daily:
            values += self.params.daily * self.level * np.sin(2 * np.pi * ts / 86400.0)
        out = [Sample("latency_ms", lab, ts, v) for lab, v in zip(self.labels, values.tolist())]
        self.collected_at = time.perf_counter()
        return out


@hookimpl
def register_sources(register):
    register(SeriesSource)


def registry():
    """Built-in plugins plus this module's source."""
    from alertd.plugins import load_registry

    reg = load_registry([], entrypoints=False)
    reg.add_module(sys.modules[__name__], "bench", "bench_series")
    return reg


def source_names(split: int) -> list[str]:
    """The sources of a config written with `split`: "mem", or "mem0".."memK-1"."""
    return ["mem"] if split == 1 else [f"mem{i}" for i in range(split)]


def write_config(directory: Path, n: int, *, scope: str = "rule", receivers: str | None = None,
                 routes: str = "", extra_rules: str = "", detector: str | None = None, split: int = 1) -> Path:
    """alertd.yaml for n series at a 10 s interval, read by one rule with the default detector
    (the `pyod` detector of alertd.yaml: KNN, threshold 0.999) at `scope`; with `split` K,
    the n series are K sources of n/K series, each read by its own rule."""
    detector = detector or f"{{type: pyod, model: KNN, threshold: 0.999, model_scope: {scope}}}"
    names, each = source_names(split), n // split
    sources = "".join(f"  {name}: {{type: bench_series, every: {INTERVAL:g}s, series: {each}, "
                      f"first: {i * each}, backfill: false}}\n" for i, name in enumerate(names))
    rules = "".join(f"""\
  - name: latency{"" if split == 1 else i}
    source: {name}
    series: latency_ms
    detector: {detector}
    for: 0s
""" for i, name in enumerate(names))
    text = f"""\
store: alertd.db
http: {{enabled: false}}
sources:
{sources}rules:
{rules}{extra_rules}receivers:
{receivers or "  null: [{type: console, stream: stderr, if_env: BENCH_NEVER_SET}]"}
{routes}"""
    path = directory / "alertd.yaml"
    path.write_text(text)
    return path


def machine() -> str:
    """CPU model, cores, Python, load average: printed with every figure."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def rss_mib() -> float:
    """This process's resident set (VmRSS) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def quiet_logs() -> None:
    from alertd.log import configure

    configure("error", json_lines=True, stream=open(os.devnull, "w"))


def build(directory: Path, n: int, history: int, scope: str = "rule", save_last: bool = False, **config_kw) -> dict:
    """Config and store in `directory`: `history` polls of n series at 10 s on a fake clock
    that ends now, through the real daemon, with the model fitted inline and persisted
    (`config_kw`: receivers and routes for `write_config`).

    The model the store keeps is the first fit's (made once `min_history` points were there)
    unless `save_last`: then one more fit after the last poll saves the model as it is at the
    end of the history (for `surprise`, whose state learns at every point and is saved every
    `retrain`, 6 h: the state of a daemon that has been running, not one from its 6th poll)."""
    from alertd.clock import FakeClock
    from alertd.config.load import load_config
    from alertd.daemon.core import Daemon

    path = write_config(directory, n, scope=scope, **config_kw)
    names = source_names(config_kw.get("split", 1))
    reg = registry()
    config = load_config(path, reg, environ={})
    clock = FakeClock(time.time() - history * INTERVAL)

    async def run() -> dict:
        daemon = Daemon(config, reg, store_path=directory / "alertd.db", clock=clock)
        await daemon.open()
        daemon.trainer.inline = True  # fit right when the history is there
        started = time.perf_counter()
        for _ in range(history):
            clock.advance(INTERVAL)
            for name in names:
                await daemon.poll(name)
        if save_last:
            for st in daemon.trainer.rules:
                daemon.trainer._submit(st, "bench: the state at the end of the history")
        seconds = time.perf_counter() - started
        info = daemon.trainer.status()["latency" if len(names) == 1 else "latency0"]
        await daemon.close()
        return {"seconds": seconds, "fits": info["fits"], "model": info["model"]}

    return asyncio.run(run())
