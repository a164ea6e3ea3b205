"""Kill the real daemon with SIGKILL at random moments and count what reached the receiver.

Shared by the fast test (tests/test_crash.py, a few kills) and the long run (bench/crash.py,
50 kills). The daemon (`python -m alertd.cli run`, a real subprocess) polls the shop
simulator at 120x speed: a payment outage (3 providers) and a stock-out (4 SKUs) every 20
shop minutes (10 real seconds), so incidents fire and resolve all the time. Every group is
notified through the `webhook` notifier to a real local HTTP server that records each
request's `Idempotency-Key` header and body.

A round starts the daemon, waits a random time, kills it with SIGKILL and checks the store
with `PRAGMA integrity_check`. After the last kill the daemon is started once more with the
incidents switched off, so nothing new fires, and runs until every fired incident was
notified (or a time limit passes) and is stopped with SIGTERM, which drains the outbox.

Counted from the store and the receiver:

- fired: incidents the store says fired;
- lost: fired incidents that no delivered `firing` notice named;
- duplicates: idempotency keys delivered more than once (each delivery of a key must carry
  the same body: the same notice, re-sent because the kill fell between send and commit);
  with `held_every`, some kills are made to fall there, and their notice must come twice;
- delivered: notices the receiver got (all deliveries, duplicates included); a request the
  kill cut off while it was being written (torn: shorter than its Content-Length) is not a
  delivery, and is counted apart.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from daemon_process import ROOT, DaemonProcess
from processes import stop
from servers import RecordingHTTPServer

CONFIG = """\
store: {store}
http: {{enabled: false}}
shutdown_timeout: 5s
sources:
  shop:
    type: shop_sim
    every: 250ms
    speed: 120
    step: 30s
    backfill: false
    cycle: 20m
    incidents: {incidents}
rules:
  - {{name: payment_down, source: shop, series: 'payment_success_ratio{{provider=~".+"}}',
      detector: {{type: threshold, below: 0.9}}, severity: critical}}
  - {{name: stock_out, source: shop, series: 'stock_level{{sku=~".+"}}',
      detector: {{type: threshold, below: 1}}}}
receivers:
  hook: [{{type: webhook, url: "{hook}/hook"}}]
routes: {{receiver: hook, group_by: ["..."], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
"""

INCIDENTS = ('[{kind: payment_outage, at: 5m, duration: 10m, target: "*"}, '
             '{kind: stock_out, at: 8m, duration: 6m, target: "*"}]')


@dataclass
class CrashReport:
    """What a crash run counted; `problems` lists every broken promise (empty: all kept)."""

    kills: int = 0
    fired: int = 0
    delivered: int = 0
    distinct_keys: int = 0
    lost: list[int] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    integrity: list[str] = field(default_factory=list)
    held_keys: list[str] = field(default_factory=list)  # notices in flight at a mid-send kill
    torn: int = 0  # requests cut off by a kill while being written (not deliveries)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"kills": self.kills, "mid_send_kills": len(self.held_keys), "incidents_fired": self.fired, "notices_delivered": self.delivered,
                "torn_requests": self.torn,
                "distinct_notices": self.distinct_keys, "lost": len(self.lost),
                "duplicates": sum(n - 1 for n in self.duplicates.values()),
                "integrity_check": "ok" if set(self.integrity) == {"ok"} else self.integrity,
                "seconds": round(self.seconds, 1)}


def integrity(store: Path) -> str:
    with sqlite3.connect(store) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def fired_incidents(store: Path) -> list[int]:
    with sqlite3.connect(store) as db:
        return [r[0] for r in db.execute("SELECT id FROM incidents WHERE fired_at IS NOT NULL ORDER BY id")]


def complete(requests) -> list:
    """The requests that arrived whole: a kill in the middle of writing one leaves a torn
    request (a body shorter than its Content-Length), which no receiver would act on."""
    out = []
    for r in requests:
        try:
            whole = len(r.body) == int(r.headers.get("content-length", -1))
            if whole and isinstance(r.json(), dict):
                out.append(r)
        except ValueError:
            pass
    return out


def notified(requests) -> set[int]:
    """Incident ids named by a delivered firing (or digest) notice."""
    out = set()
    for r in complete(requests):
        body = r.json()
        if body["kind"] in ("firing", "digest"):
            out.update(i["id"] for i in body["incidents"] if i["state"] == "firing" or body["kind"] == "digest")
    return out


def _deliveries(requests, key: str) -> int:
    """How many whole requests carried the idempotency key `key`."""
    return sum(1 for r in complete(requests) if r.headers.get("idempotency-key", "") == key)


def _write(config: Path, store: Path, hook: str, incidents: str) -> None:
    config.write_text(CONFIG.format(store=store, hook=hook, incidents=incidents))


def _env() -> dict:
    # the worktree's code, whatever is installed in the venv
    return {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def run(workdir: Path, kills: int, seed: int = 1, max_wait: float = 4.0, log=print,
        held_every: int = 0) -> CrashReport:
    """`kills` rounds of start, random wait (0.2 s to `max_wait`), SIGKILL; then a final drain.

    With `held_every` n, every n-th kill falls between a send and its commit on purpose: the
    receiver holds its answer, the kill comes once a request has arrived (the receiver has the
    notice, alertd has not marked it sent), so that notice must come again with the same key.
    """
    started = time.monotonic()
    rng = random.Random(seed)
    report = CrashReport()
    config, store = workdir / "alertd.yaml", workdir / "alertd.db"
    with RecordingHTTPServer() as web:
        _write(config, store, web.url, INCIDENTS)
        for i in range(kills):
            held = bool(held_every) and i % held_every == held_every - 1
            with DaemonProcess(config, env=_env()) as daemon:
                daemon.wait_event("daemon_ready", timeout=30)
                wait = rng.uniform(0.2, max_wait)
                if held:
                    # an earlier mid-send notice is sent again first after a start; on a slow
                    # machine the rounds between may have been too short for it, and holding it
                    # a second time would count one notice's redelivery twice: wait for it
                    web.wait_until(lambda reqs: all(_deliveries(reqs, key) >= 2 for key in report.held_keys),
                                   timeout=30, what="the earlier mid-send notices to come again")
                    seen = len(web.requests)
                    web.hold()
                    web.wait_for(seen + 1, timeout=30)  # a send is in flight, not yet committed
                    report.held_keys.append(web.requests[seen].headers.get("idempotency-key", ""))
                    wait = 0.0
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and daemon.proc.poll() is None:
                    time.sleep(0.02)  # the test's own pacing of the kill, not a daemon timer
                if daemon.proc.poll() is not None:
                    report.problems.append(f"round {i + 1}: the daemon exited by itself "
                                           f"({daemon.proc.returncode})")
                stop(daemon.proc, grace=10, sig=signal.SIGKILL)
                web.release()
            report.kills += 1
            report.integrity.append(integrity(store))
            log(f"kill {i + 1}/{kills} {'mid-send' if held else f'after {wait:.2f}s'}: {len(web.requests)} deliveries so far, "
                f"integrity {report.integrity[-1]}")
        _write(config, store, web.url, "[]")  # nothing new fires: deliver what is owed, then stop
        with DaemonProcess(config, env=_env()) as daemon:
            daemon.wait_event("daemon_ready", timeout=30)
            limit = time.monotonic() + 30
            while time.monotonic() < limit and not set(fired_incidents(store)) <= notified(web.requests):
                time.sleep(0.1)
            code = daemon.stop(timeout=30)
            if code != 0:
                report.problems.append(f"the final stop exited with {code}")
        report.integrity.append(integrity(store))
        requests = complete(web.requests)
        report.torn = len(web.requests) - len(requests)
    fired = fired_incidents(store)
    report.fired = len(fired)
    report.delivered = len(requests)
    report.lost = sorted(set(fired) - notified(requests))
    bodies = collections.defaultdict(list)
    for r in requests:
        bodies[r.headers.get("idempotency-key", "")].append(r.body)
    report.distinct_keys = len(bodies)
    report.duplicates = {k: len(v) for k, v in bodies.items() if len(v) > 1}
    if "" in bodies:
        report.problems.append(f"{len(bodies[''])} deliveries without an Idempotency-Key")
    for key, versions in bodies.items():
        if len(set(versions)) > 1:
            report.problems.append(f"the deliveries of {key} differ: a key must name one notice")
        if json.loads(versions[0])["idempotency_key"] != key:
            report.problems.append(f"the header key {key} differs from the body's")
    extra = sum(n - 1 for n in report.duplicates.values())
    if extra > report.kills:
        report.problems.append(f"{extra} duplicates for {report.kills} kills: a kill can interrupt "
                               "at most one send (one integration, sent in order)")
    for key in report.held_keys:
        if report.duplicates.get(key, 0) < 2:
            report.problems.append(f"the notice {key} in flight at a mid-send kill was not sent again")
    if report.lost:
        report.problems.append(f"{len(report.lost)} fired incidents were never notified: {report.lost}")
    if set(report.integrity) != {"ok"}:
        report.problems.append(f"integrity_check: {report.integrity}")
    report.seconds = time.monotonic() - started
    return report


if __name__ == "__main__":  # pragma: no cover - for a quick look: python tests/crash_harness.py DIR N
    print(json.dumps(run(Path(sys.argv[1]), int(sys.argv[2])).summary()))
