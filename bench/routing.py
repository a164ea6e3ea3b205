"""Benchmark: alert updates through the state machine, router and store.

    .venv/bin/python bench/routing.py [--alerts 10000] [--groups 1000] [--batch 1000] [--rounds 20] [--runs 3] [--cpu-time]

10,000 alerts (series) across 1,000 alert groups (`group_by: [group]`, 10 alerts a group),
arriving as verdict batches of 1,000 (one poll of one of ten sources). Verdicts go through
the real alert stage (`alertd.engine.alert_stage.AlertStage`: state machine, flap detection, batched
incident/history writes, router groups, group flushes into the outbox) on a real SQLite
file (WAL). Detection and sample storage are not included: they are measured by
bench/tick.py. The daemon clock advances 100 ms per batch; group_wait is 0 and
group_interval 1 s, so a round of ten batches also flushes every changed group.

Phases: `fire` (every alert goes anomalous: 10,000 incidents, 1,000 groups created and
notified in one round), `steady` (every alert stays anomalous: pure updates), `churn 1%`
(each round 0.5% of the alerts resolve and 0.5% fire again: about 100 groups re-notified a
round), `churn 20%` (each round 10% resolve and 10% fire again: every group changes and is
re-notified every round, an extreme storm).

Reported: alert updates/s per phase (verdicts processed / time), and the latency from
handing a batch of verdicts over to the commit of the outbox rows it caused (p50, p99,
max over the batches that queued notices), in milliseconds. The verdicts of a batch are
built before its clock starts: they are the detection stage's output (bench/tick.py). Issue
20's goal reads the fire and churn 20% phases: 50,000 alert updates/s, and a p99 of at most
50 ms with `--batch 250`.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alertd.clock import FakeClock  # noqa: E402
from alertd.config.load import load_config  # noqa: E402
from alertd.daemon.gc_tuning import tune_gc  # noqa: E402
from alertd.engine.alert_stage import AlertStage  # noqa: E402
from alertd.log import configure, get_logger  # noqa: E402
from alertd.metrics import Metrics  # noqa: E402
from alertd.model import Status, Verdict, fingerprint, make_labels  # noqa: E402
from alertd.plugins import load_registry  # noqa: E402
from alertd.store import Store  # noqa: E402

CONFIG = """\
sources:
  shard: {type: shop_sim, every: 5s}
rules:
  - name: latency_high
    source: shard
    series: latency_ms
    detector: {type: threshold, above: 500}
receivers:
  oncall: [{type: console}]
routes:
  receiver: oncall
  group_by: [group]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 4h
"""


def percentile(values, q):
    values = sorted(values)
    if not values:
        return math.nan
    k = min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))
    return values[k]


def run(args) -> dict:
    """One fresh run of all phases: {phase: (updates/s, [latency ms of batches with notices])}."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "bench.yaml"
        cfg_path.write_text(CONFIG)
        registry = load_registry([], entrypoints=False)
        config = load_config(cfg_path, registry, environ={})
        rule = config.rules[0]
        store = Store(Path(tmp) / "bench.db")
        clock = FakeClock(1_750_000_000.0)
        stage = AlertStage(config, store, clock, Metrics(), get_logger())
        tune_gc()  # what the daemon does after start-up

        per_group = max(1, args.alerts // args.groups)
        labels = [make_labels({"host": f"h{i:05d}", "group": f"g{i // per_group:04d}"})
                  for i in range(args.alerts)]
        keys = [f'latency_ms{{group="g{i // per_group:04d}",host="h{i:05d}"}}' for i in range(args.alerts)]
        fps = [fingerprint(rule.name, lab) for lab in labels]
        data_ts = [clock.now()]
        # --cpu-time: this process's CPU time, which neighbours on a shared machine disturb less
        timer = time.process_time if args.cpu_time else time.perf_counter

        def batch_run(start: int, bad) -> tuple[float, int]:
            """One batch of verdicts; returns (seconds to outbox commit, rows queued)."""
            data_ts[0] += 0.1
            clock.advance(0.1)
            ts = data_ts[0]
            # the verdicts are the detection stage's output (bench/tick.py measures that):
            # the clock starts when they are handed over
            verdicts = []
            for i in range(start, min(start + args.batch, args.alerts)):
                anomalous = bad(i)
                verdicts.append((i, Verdict(rule.name, keys[i], labels[i], ts, 900.0 if anomalous else 100.0,
                                            Status.ANOMALOUS if anomalous else Status.OK,
                                            1.0 if anomalous else 0.0, 0.5, math.nan, 500.0,
                                            "latency_ms 900, expected <= 500")))
            began = timer()
            with store.atomic():
                for i, v in verdicts:
                    if v.status == Status.ANOMALOUS or stage.tracker.is_tracked(fps[i]):
                        stage.observe(rule, v, fps[i])
                stage.commit()
            queued = stage.router.flush_due(clock.now())  # what the group timer does when woken
            return timer() - began, queued

        results = {}

        def phase(name: str, rounds: int, bad_for_round):
            seconds, latencies, updates = 0.0, [], 0
            for r in range(rounds):
                bad = bad_for_round(r)
                for start in range(0, args.alerts, args.batch):
                    took, queued = batch_run(start, bad)
                    seconds += took
                    updates += min(args.batch, args.alerts - start)
                    if queued:
                        latencies.append(took * 1000)
            results[name] = (updates / seconds if seconds else math.nan, latencies)

        phase("fire", 1, lambda r: (lambda i: True))
        phase("steady", args.rounds, lambda r: (lambda i: True))
        phase("churn 1%", args.rounds, lambda r: (lambda i: (i + r) % 200 != 0))
        phase("churn 20%", args.rounds, lambda r: (lambda i: (i + r) % 10 != 0))
        store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=20, help="rounds of the steady and churn phases")
    parser.add_argument("--runs", type=int, default=3, help="fresh runs; medians are reported")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the process's CPU time instead of the wall clock (a shared machine)")
    args = parser.parse_args()
    configure("warning", json_lines=True)
    runs = [run(args) for _ in range(args.runs)]

    def med(values):
        values = [v for v in values if not math.isnan(v)]
        return statistics.median(values) if values else math.nan

    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"# {args.alerts} alerts, {args.groups} groups, batches of {args.batch}, "
          f"{args.rounds} rounds; medians of {args.runs} runs"
          + ("; CPU time, not the wall clock" if args.cpu_time else ""))
    print("| phase | alert updates/s | batches with notices | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in runs[0]:
        rates = [r[name][0] for r in runs]
        lats = [r[name][1] for r in runs]
        print(f"| {name} | {med(rates):,.0f} | {len(lats[0])} | {med([percentile(x, 50) for x in lats]):.1f} | "
              f"{med([percentile(x, 99) for x in lats]):.1f} | {med([max(x) if x else math.nan for x in lats]):.1f} |")


if __name__ == "__main__":
    main()
